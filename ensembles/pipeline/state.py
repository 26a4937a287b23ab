"""What the steps transform (:class:`State`), the ground truth they read (:class:`Labels`), and the runner.

A :class:`State` holds the fused feature blocks, then (from the first distance step on) the
query×gallery distance matrix, then (from the first ranking step on) a top-K ranking.
:func:`run_pipeline` runs a pipeline's steps on it in order.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from post_processing.camera import same_camera_penalty
from post_processing.distance import topk_smallest
from post_processing.submission import TOPK

from ..fusion import FeatureBlock, block_distance
from .model import Pipeline, Step
from .schema import DISTANCES, FEATURES, RANKING, STAGE_NAMES, STEPS, PipelineError

# Above this many query + gallery images re-ranking keeps only the top-K (the gallery×gallery matrix
# alone is 4·G² bytes); the ``rerank`` step reads it from the state.
DENSE_RERANK_MAX = 8000


@dataclass
class Labels:
    """Per-image ground truth and metadata, in query / gallery order (-1 where unknown)."""

    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    g_tracks: np.ndarray
    has_gt: bool = False
    train_pids: Optional[np.ndarray] = None
    # Named query subsets scored on their own too (boolean masks): the attributes the dataset declares.
    query_subsets: Dict[str, np.ndarray] = field(default_factory=dict)
    # How rankings are scored: a post_processing.protocols name and its options (the dataset's).
    protocol: str = "market"
    protocol_options: Dict[str, Any] = field(default_factory=dict)


class State:
    """What the steps transform: feature blocks, then the query×gallery distances, then a ranking.

    Steps change it through its methods; what one step leaves for a later one is explicit here:
    :meth:`added_distances` (what distance steps added to the fused distance, which top-K
    re-ranking re-applies) and :attr:`same_camera_penalty` (which camera-aware re-ranking repeats
    in its neighbourhoods).
    """

    def __init__(self, blocks: List[FeatureBlock], labels: Labels, metric: str = "euclidean",
                 aux: Optional[Mapping[str, Tuple[np.ndarray, np.ndarray]]] = None,
                 topk: int = TOPK, dense_rerank_max: int = DENSE_RERANK_MAX, knn: Optional[str] = None):
        self.blocks = blocks
        self.labels = labels
        self.metric = metric
        self.aux = dict(aux or {})
        self.topk = topk  # gallery images per query a ranking keeps (what a submission holds)
        self.dense_rerank_max = dense_rerank_max
        self.knn = knn  # neighbour backend spec of steps that search neighbours (post_processing.knn); None: exact
        self.dist: Optional[np.ndarray] = None  # Q×G once a distance step ran
        self.ranking: Optional[np.ndarray] = None  # Q×K gallery indices once a ranking step ran
        self.notes: List[str] = []
        self._fused_dist: Optional[np.ndarray] = None  # self.dist before distance steps changed it
        self._same_camera_penalty = 0.0
        self.planned: List[str] = []  # names of the steps the running pipeline lists (run_pipeline sets it)

    @property
    def same_camera_penalty(self) -> float:
        """The distance :meth:`penalise_same_camera` added to same-camera pairs so far."""
        return self._same_camera_penalty

    def penalise_same_camera(self, penalty: float) -> None:
        """Adds ``penalty`` to the distances of query/gallery pairs from the same camera."""
        lab = self.labels
        self.set_distances(same_camera_penalty(self.distances(), lab.q_camids, lab.g_camids, penalty))
        self._same_camera_penalty += penalty

    def added_distances(self) -> np.ndarray:
        """What distance steps added to the fused query×gallery distance so far (Q×G)."""
        return self.distances() - self._fused_dist

    @property
    def stage(self) -> int:
        return RANKING if self.ranking is not None else DISTANCES if self.dist is not None else FEATURES

    @property
    def num_query(self) -> int:
        return len(self.blocks[0].query)

    @property
    def num_gallery(self) -> int:
        return len(self.blocks[0].gallery)

    def distances(self) -> np.ndarray:
        """The query×gallery distance matrix, computed from the blocks when a step first needs it."""
        if self.ranking is not None:
            raise PipelineError("needs the full distance matrix, but only a top-K ranking is left "
                                "(re-ranking switched to top-K mode or a ranking step ran); move this step earlier")
        if self.dist is None:
            self.dist = block_distance(self.blocks, "query", "gallery", self.metric)
            self._fused_dist = self.dist.copy()
        return self.dist

    def set_distances(self, dist: np.ndarray) -> None:
        self.distances()
        if dist.shape != self.dist.shape:
            raise PipelineError(f"step returned distances of shape {dist.shape}, expected {self.dist.shape}")
        self.dist = np.asarray(dist, dtype=np.float32)

    def rank(self, k: int) -> np.ndarray:
        """Top-``k`` gallery indices per query (ties to the lower index) at the current stage."""
        if self.ranking is not None:
            if self.ranking.shape[1] < min(k, self.num_gallery):
                raise PipelineError(f"the ranking keeps {self.ranking.shape[1]} gallery images per query, "
                                    f"{k} were asked for")
            return self.ranking[:, :k]
        dist = self.dist if self.dist is not None else block_distance(self.blocks, "query", "gallery", self.metric)
        return topk_smallest(dist, k)


def run_pipeline(pipeline: Pipeline, state: State,
                 on_step: Optional[Callable[[int, Step, State, float], None]] = None) -> State:
    """Runs every step of ``pipeline`` on ``state`` in order; ``on_step(i, step, state, seconds)`` after each."""
    state.planned = [s.name for s in pipeline.steps]
    for i, step in enumerate(pipeline.steps, 1):
        if step.stage < state.stage:
            raise PipelineError(f"step {i} {step.name!r} works on {STAGE_NAMES[step.stage]} but the pipeline "
                                f"already reached the {STAGE_NAMES[state.stage]} stage")
        t0 = time.perf_counter()
        try:
            STEPS.get(step.name).func(state, dict(step.params))
        except PipelineError as e:
            raise PipelineError(f"step {i} {step.name!r}: {e}") from None
        if on_step is not None:
            on_step(i, step, state, time.perf_counter() - t0)
    return state
