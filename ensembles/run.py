"""Runs a pipeline on loaded inputs and scores every stage: each model alone, the fusion, each step.

What `ensemble fuse` computes (and `ensemble tune` repeats per trial, unscored); the fusion itself is
:mod:`ensembles.fusion`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from post_processing.submission import TOPK

from .fusion import make_blocks
from .inputs import Inputs
from .pipeline import DENSE_RERANK_MAX, Pipeline, PipelineError, State, Step, run_pipeline
from .report import score


@dataclass
class FuseResult:
    """The final ranking (Q×topk gallery indices) and, with ground truth, the scores of every stage."""

    ranking: np.ndarray
    per_model: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    fusion: Optional[Dict[str, Any]] = None
    steps: List[Dict[str, Any]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def final(self) -> Optional[Dict[str, Any]]:
        return self.steps[-1]["scores"] if self.steps and "scores" in self.steps[-1] else self.fusion

    def rows(self, pipeline: Pipeline) -> Tuple[List[Tuple[str, Dict[str, Any]]], List[Optional[float]]]:
        """(label, scores) rows of the metrics table and each row's mAP gain: the fusion's over the
        best single model, each step's over the row before it."""
        rows = [(f"model {m}", s) for m, s in self.per_model.items()]
        gains: List[Optional[float]] = [None] * len(rows)
        if self.fusion is not None:
            w = ", ".join(f"{m}={pipeline.weights.get(m, 1.0):g}" for m in pipeline.models)
            rows.append((f"fusion {pipeline.fusion} ({w})" if len(pipeline.models) > 1 else "no fusion", self.fusion))
            best = max((s["mAP"] for s in self.per_model.values()), default=None)
            gains.append(None if best is None or len(pipeline.models) < 2 else self.fusion["mAP"] - best)
        for s in self.steps:
            if "scores" in s:
                gains.append(s["scores"]["mAP"] - rows[-1][1]["mAP"])
                rows.append((f"+ {s['label']}", s["scores"]))
        return rows, gains


def make_state(inputs: Inputs, pipeline: Pipeline, only_model: Optional[str] = None, topk: int = TOPK,
               dense_rerank_max: int = DENSE_RERANK_MAX, knn: Optional[str] = None) -> State:
    """The pipeline's fused blocks (or model ``only_model`` alone) plus labels and auxiliary features."""
    if only_model is None:
        blocks = make_blocks(pipeline.models, inputs.feats, pipeline.weights, pipeline.fusion)
    else:
        blocks = make_blocks([only_model], inputs.feats)
    aux = {m: (inputs.feats["query"][m], inputs.feats["gallery"][m]) for m in pipeline.aux_models}
    return State(blocks, inputs.labels, pipeline.distance, aux, topk=topk, dense_rerank_max=dense_rerank_max, knn=knn)


def run_ensemble(inputs: Inputs, pipeline: Pipeline, topk: int = TOPK, evaluate: Optional[bool] = None,
         dense_rerank_max: int = DENSE_RERANK_MAX, knn: Optional[str] = None) -> FuseResult:
    """Runs ``pipeline``; with ground truth (``evaluate`` None) or ``evaluate=True`` scores every stage.

    ``evaluate=False`` skips all scoring (what ``tune`` does between trials). ``knn``: the neighbour
    backend of the feature-level re-ranking (a ``--knn`` spec; None: exact).
    """
    num_gallery = len(inputs.labels.g_pids)
    if topk > num_gallery:
        raise PipelineError(f"the gallery has {num_gallery} images, fewer than the {topk} per query a ranking "
                            f"needs (lower --topk)")
    if evaluate is None:
        evaluate = inputs.labels.has_gt
    result = FuseResult(ranking=np.empty((0, topk), np.int64))
    if evaluate:
        for m in pipeline.models:
            single = make_state(inputs, pipeline, m, topk, dense_rerank_max, knn)
            result.per_model[m] = score(single.rank(topk), inputs.labels, topk)
    state = make_state(inputs, pipeline, topk=topk, dense_rerank_max=dense_rerank_max, knn=knn)
    if evaluate:
        result.fusion = score(state.rank(topk), inputs.labels, topk)

    def on_step(i: int, step: Step, st: State, seconds: float) -> None:
        row: Dict[str, Any] = {"step": i, "name": step.name, "params": dict(step.params), "label": step.label(),
                               "seconds": round(seconds, 3)}
        if evaluate:
            row["scores"] = score(st.rank(topk), inputs.labels, topk)
        result.steps.append(row)

    run_pipeline(pipeline, state, on_step)
    result.ranking = np.ascontiguousarray(state.rank(topk), dtype=np.int64)
    result.notes = list(state.notes)
    return result


def metrics_json(result: FuseResult, pipeline: Pipeline, inputs: Inputs, topk: int, track2: str) -> Dict[str, Any]:
    """The ``--metrics-out`` document: top-level scores are the final ranking's (what was written)."""
    final = result.final or {"mAP": None, "cmc": None}
    return {**final,
            "per_model": result.per_model,
            "fusion": result.fusion,
            "steps": [{**{k: v for k, v in s.items() if k != "scores"}, **s.get("scores", {})} for s in result.steps],
            "has_ground_truth": inputs.labels.has_gt,
            "num_query": len(inputs.labels.q_pids), "num_gallery": len(inputs.labels.g_pids),
            "topk": topk, "track2": track2, "pipeline": pipeline.to_dict(), "notes": result.notes}
