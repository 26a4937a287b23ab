"""The post-processing pipeline: a registry of named steps, the pipeline YAML schema, and the runner.

A pipeline is ``{models: [...], weights: {model: w}, fusion: concat|distance, distance: euclidean,
steps: [{name: rerank, k1: 20, ...}, ...]}``. Steps run in the order listed on a :class:`State`
that holds the fused feature blocks, then (from the first distance step on) the query×gallery
distance matrix, then (from the first ranking step on) a top-K ranking. Each step belongs to one
of those three stages and a pipeline must list them in stage order: feature steps, distance steps,
ranking steps. Without a YAML the CLI builds the steps in :data:`CANONICAL_ORDER`, the data-flow
order of the design (metric learning, track averaging, DBA/QE, camera terms, re-ranking, track
expansion).

Re-ranking takes the full query×gallery, query×query and gallery×gallery distance matrices
(``re_ranking``; the query×gallery one includes any camera terms) while query + gallery has at most
``dense_rerank_max`` images (default 8000: the gallery×gallery matrix alone is 4·G² bytes). Above
that it switches to ``re_ranking_features`` on the (concatenated) fused features, which keeps only
the top-K per query; camera terms applied earlier are then added to those top-K distances before
re-sorting. After a ``camera_penalty`` step the dense path also penalises same-camera pairs in the
query×query and gallery×gallery matrices (``camera_aware``), so k-reciprocal neighbourhoods are
built across cameras; the feature-level path does not (it says so in the run's notes).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import yaml

from post_processing.fileio import atomic_write
from post_processing.camera import same_camera_penalty, subtract_model_distance
from post_processing.distance import METRICS, topk_smallest
from post_processing.features import l2_normalize
from post_processing.metric_learning import ALGORITHMS, MetricLearner
from post_processing.query_expansion import alpha_query_expansion, average_query_expansion, database_augmentation
from post_processing.rerank import re_ranking, re_ranking_features
from post_processing.track import WEIGHTINGS, track_average, track_expand, track_group_distance

from .fusion import FUSIONS, Block, block_distance, concat_equivalent
from post_processing.errors import ReidError

FEATURES, DISTANCES, RANKING = 0, 1, 2
STAGE_NAMES = {FEATURES: "features", DISTANCES: "distances", RANKING: "ranking"}
DENSE_RERANK_MAX = 8000
TOP_LEVEL_KEYS = ("models", "weights", "fusion", "distance", "steps")


class PipelineError(ReidError, ValueError):
    """Invalid pipeline (names the file, step and key) or a step that cannot run on this data."""


@dataclass(frozen=True)
class Param:
    """One step parameter: its type (int, float, bool, str or dict), default and constraints."""

    kind: type
    default: Any = None
    help: str = ""
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Tuple[str, ...] = ()
    optional: bool = False  # None is a valid value
    required: bool = False

    def describe(self) -> str:
        kind = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
                dict: "a mapping"}[self.kind]
        if self.choices:
            kind = "one of " + ", ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            kind += f" in [{self.minimum:g}, {self.maximum:g}]"
        elif self.minimum is not None:
            kind += f" >= {self.minimum:g}"
        elif self.maximum is not None:
            kind += f" <= {self.maximum:g}"
        return kind + (" or null" if self.optional else "")

    def check(self, value: Any) -> Any:
        """``value`` converted to this parameter's type; raises ``ValueError`` with what was expected."""
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"expected {self.describe()}, got null")
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, self.kind)
        if ok and self.choices and value not in self.choices:
            ok = False
        if ok and self.minimum is not None and value < self.minimum:
            ok = False
        if ok and self.maximum is not None and value > self.maximum:
            ok = False
        if not ok:
            raise ValueError(f"expected {self.describe()}, got {value!r}")
        return dict(value) if self.kind is dict else value


@dataclass(frozen=True)
class StepSpec:
    name: str
    stage: int
    func: Callable[["State", Dict[str, Any]], None]
    params: Dict[str, Param]
    help: str


STEPS: Dict[str, StepSpec] = {}
CANONICAL_ORDER = ("metric", "track_average", "dba", "qe", "subtract", "camera_penalty", "rerank",
                   "track_distance", "track_expand")


def register_step(name: str, stage: int, help: str, **params: Param):
    """Decorator adding ``func(state, params)`` to :data:`STEPS` under ``name``."""

    def deco(func):
        STEPS[name] = StepSpec(name, stage, func, params, help)
        return func

    return deco


@dataclass
class Step:
    """One configured step: its name and every parameter (defaults filled in)."""

    name: str
    params: Dict[str, Any]

    @classmethod
    def make(cls, name: str, where: str = "step", **params) -> "Step":
        """Validated step: unknown names/keys and bad values raise :class:`PipelineError` naming ``where``."""
        if name not in STEPS:
            raise PipelineError(f"{where}: unknown step {name!r}; known steps: {', '.join(STEPS)}")
        spec = STEPS[name]
        where = f"{where} {name!r}"
        unknown = [k for k in params if k not in spec.params]
        if unknown:
            raise PipelineError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(spec.params) or '(none)'}")
        values = {}
        for key, param in spec.params.items():
            if key not in params:
                if param.required:
                    raise PipelineError(f"{where}: missing key {key!r} ({param.describe()}: {param.help})")
                values[key] = param.default
                continue
            try:
                values[key] = param.check(params[key])
            except ValueError as e:
                raise PipelineError(f"{where}: key {key!r}: {e}") from None
        return cls(name, values)

    @property
    def stage(self) -> int:
        return STEPS[self.name].stage

    def label(self) -> str:
        """``name(k=v, ...)`` for the table; switches left at their default are not shown."""
        spec = STEPS[self.name].params
        shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in self.params.items() if v is not None and v != {}
                          and not (isinstance(v, bool) and v == spec[k].default))
        return f"{self.name}({shown})" if shown else self.name


@dataclass
class Pipeline:
    """Models, fusion and the ordered steps of one ``ensemble fuse`` run."""

    models: List[str] = field(default_factory=list)
    weights: Dict[str, float] = field(default_factory=dict)
    fusion: str = "concat"
    distance: str = "euclidean"
    steps: List[Step] = field(default_factory=list)

    def validate(self, source: str = "pipeline") -> "Pipeline":
        """Checks fusion, distance, weights and stage order; returns ``self``."""
        if self.fusion not in FUSIONS:
            raise PipelineError(f"{source}: key 'fusion': expected one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if self.distance not in METRICS:
            raise PipelineError(f"{source}: key 'distance': expected one of {', '.join(METRICS)}, got {self.distance!r}")
        if len(set(self.models)) != len(self.models):
            raise PipelineError(f"{source}: key 'models': a model is listed twice: {', '.join(self.models)}")
        if self.models:
            unknown = sorted(set(self.weights) - set(self.models))
            if unknown:
                raise PipelineError(f"{source}: key 'weights': {', '.join(unknown)} not among models "
                                    f"({', '.join(self.models)})")
        for m, w in self.weights.items():
            if not (isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0):
                raise PipelineError(f"{source}: key 'weights': weight of {m!r} must be a number >= 0, got {w!r}")
        latest = None
        for i, step in enumerate(self.steps, 1):
            if latest is not None and step.stage < latest[1].stage:
                raise PipelineError(
                    f"{source}: step {i} {step.name!r} works on {STAGE_NAMES[step.stage]} but comes after step "
                    f"{latest[0]} {latest[1].name!r} which works on {STAGE_NAMES[latest[1].stage]}; list feature "
                    f"steps first, then distance steps, then ranking steps")
            if latest is None or step.stage >= latest[1].stage:
                latest = (i, step)
        return self

    @classmethod
    def from_dict(cls, data: Any, source: str = "pipeline") -> "Pipeline":
        """Pipeline from parsed YAML; every problem raises :class:`PipelineError` naming ``source``."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise PipelineError(f"{source}: expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)}, "
                                f"got {type(data).__name__}")
        unknown = [k for k in data if k not in TOP_LEVEL_KEYS]
        if unknown:
            raise PipelineError(f"{source}: unknown key {unknown[0]!r}; valid keys: {', '.join(TOP_LEVEL_KEYS)}")
        models = data.get("models") or []
        if isinstance(models, str):
            models = [m.strip() for m in models.split(",") if m.strip()]
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise PipelineError(f"{source}: key 'models': expected a list of model names, got {models!r}")
        weights = data.get("weights") or {}
        if not isinstance(weights, Mapping):
            raise PipelineError(f"{source}: key 'weights': expected a mapping model: weight, got {weights!r}")
        raw_steps = data.get("steps") or []
        if not isinstance(raw_steps, list):
            raise PipelineError(f"{source}: key 'steps': expected a list of steps, got {type(raw_steps).__name__}")
        steps = []
        for i, item in enumerate(raw_steps, 1):
            where = f"{source}: step {i}"
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, Mapping):
                raise PipelineError(f"{where}: expected a mapping with 'name' and parameters, got {item!r}")
            if "name" not in item:
                raise PipelineError(f"{where}: missing key 'name' (one of {', '.join(STEPS)})")
            params = {str(k): v for k, v in item.items() if k != "name"}
            steps.append(Step.make(item["name"], where, **params))
        pipe = cls(list(models), {str(k): v for k, v in weights.items()}, data.get("fusion", "concat"),
                   data.get("distance", "euclidean"), steps)
        return pipe.validate(source)

    @classmethod
    def load(cls, path: str) -> "Pipeline":
        """Reads and validates a pipeline YAML file."""
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except OSError as e:
            raise PipelineError(f"cannot read pipeline {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
            raise PipelineError(f"{path}{where}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
        return cls.from_dict(data, path)

    def to_dict(self) -> Dict[str, Any]:
        return {"models": list(self.models), "weights": {m: float(self.weights.get(m, 1.0)) for m in self.models},
                "fusion": self.fusion, "distance": self.distance,
                "steps": [{"name": s.name, **{k: v for k, v in s.params.items() if v is not None}} for s in self.steps]}

    def save(self, path: str, header: str = "") -> None:
        """Writes the pipeline YAML atomically; ``header`` lines become ``#`` comments on top."""
        text = "".join(f"# {line}\n" for line in header.splitlines())
        text += yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        with atomic_write(path, "w", encoding="utf-8") as f:
            f.write(text)

    @property
    def aux_models(self) -> List[str]:
        """Feature sets the steps read besides the fused models (``subtract``'s auxiliary models)."""
        return sorted({s.params["model"] for s in self.steps if s.name == "subtract"})

    @property
    def needs_train(self) -> bool:
        return any(s.name == "metric" for s in self.steps)


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
    # Named query subsets scored on their own too (boolean masks), e.g. "foggy" where the labels say so.
    query_subsets: Dict[str, np.ndarray] = field(default_factory=dict)


class State:
    """What the steps transform: feature blocks, then the query×gallery distances, then a ranking."""

    def __init__(self, blocks: List[Block], labels: Labels, metric: str = "euclidean",
                 aux: Optional[Mapping[str, Tuple[np.ndarray, np.ndarray]]] = None,
                 depth: int = 100, dense_rerank_max: int = DENSE_RERANK_MAX):
        self.blocks = blocks
        self.labels = labels
        self.metric = metric
        self.aux = dict(aux or {})
        self.depth = depth  # length of the ranking kept once a top-K step ran
        self.dense_rerank_max = dense_rerank_max
        self.dist: Optional[np.ndarray] = None  # Q×G once a distance step ran
        self.base_dist: Optional[np.ndarray] = None  # self.dist before distance terms were added
        self.ranking: Optional[np.ndarray] = None  # Q×K gallery indices once a ranking step ran
        self.camera_penalty = 0.0  # added to same-camera pairs by camera_penalty steps so far
        self.notes: List[str] = []

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
            self.base_dist = self.dist.copy()
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
    for i, step in enumerate(pipeline.steps, 1):
        if step.stage < state.stage:
            raise PipelineError(f"step {i} {step.name!r} works on {STAGE_NAMES[step.stage]} but the pipeline "
                                f"already reached the {STAGE_NAMES[state.stage]} stage")
        t0 = time.perf_counter()
        try:
            STEPS[step.name].func(state, dict(step.params))
        except PipelineError as e:
            raise PipelineError(f"step {i} {step.name!r}: {e}") from None
        if on_step is not None:
            on_step(i, step, state, time.perf_counter() - t0)
    return state


# ----------------------------------------------------------------------------- steps
@register_step("metric", FEATURES,
               "learn a metric on the training features (train_<model>.pkl + train labels), project all features",
               method=Param(str, "lfda", "metric-learn algorithm", choices=tuple(ALGORITHMS)),
               pca_dim=Param(int, None, "PCA dimension before learning", minimum=1, optional=True),
               params=Param(dict, {}, "extra keyword arguments of the learner"))
def _metric(state: State, p: Dict[str, Any]) -> None:
    if state.labels.train_pids is None or any(b.train is None for b in state.blocks):
        raise PipelineError("needs training features train_<model>.pkl and training labels; none were loaded")
    for blk in state.blocks:
        learner = MetricLearner(p["method"], pca_dim=p["pca_dim"], **p["params"]).fit(blk.train, state.labels.train_pids)
        blk.query, blk.gallery, blk.train = (l2_normalize(learner.transform(x)) for x in (blk.query, blk.gallery, blk.train))


@register_step("track_average", FEATURES,
               "replace each gallery feature by the average of its track (test_track.txt)",
               weighting=Param(str, "inverse_distance", "how track members are weighted", choices=WEIGHTINGS))
def _track_average(state: State, p: Dict[str, Any]) -> None:
    tracks = _gallery_tracks(state)
    for blk in state.blocks:
        blk.gallery = track_average(blk.gallery, tracks, p["weighting"])


@register_step("dba", FEATURES, "database-side augmentation: each gallery feature + its k nearest gallery features",
               k=Param(int, 6, "neighbours", minimum=0))
def _dba(state: State, p: Dict[str, Any]) -> None:
    for blk in state.blocks:
        blk.gallery = database_augmentation(blk.gallery, p["k"])


@register_step("qe", FEATURES, "query expansion with the k nearest gallery features (alpha: alpha-QE, null: average)",
               k=Param(int, 6, "neighbours", minimum=0),
               alpha=Param(float, None, "alpha-QE exponent; null for average QE", minimum=0, optional=True))
def _qe(state: State, p: Dict[str, Any]) -> None:
    for blk in state.blocks:
        if p["alpha"] is None:
            blk.query = average_query_expansion(blk.query, blk.gallery, p["k"])
        else:
            blk.query = alpha_query_expansion(blk.query, blk.gallery, p["k"], p["alpha"])


@register_step("subtract", DISTANCES,
               "subtract weight x the distance of an auxiliary model (e.g. a camera or orientation model)",
               model=Param(str, None, "auxiliary feature set (query_<model>.pkl / gallery_<model>.pkl)", required=True),
               weight=Param(float, 0.1, "weight of the auxiliary distance"),
               metric=Param(str, "sqeuclidean", "distance of the auxiliary features", choices=METRICS))
def _subtract(state: State, p: Dict[str, Any]) -> None:
    if p["model"] not in state.aux:
        raise PipelineError(f"auxiliary features {p['model']!r} were not loaded")
    q, g = state.aux[p["model"]]
    state.set_distances(subtract_model_distance(state.distances(), q, g, p["weight"], p["metric"]))


@register_step("camera_penalty", DISTANCES, "add a penalty to query/gallery pairs from the same camera",
               penalty=Param(float, 1.0, "added distance"))
def _camera_penalty(state: State, p: Dict[str, Any]) -> None:
    lab = state.labels
    if (lab.q_camids < 0).all() or (lab.g_camids < 0).all():
        raise PipelineError("needs camera ids of query and gallery images, but the dataset has none "
                            "(AIC20: query_label.xml / test_label.xml); use 'subtract' with a camera model instead")
    state.set_distances(same_camera_penalty(state.distances(), lab.q_camids, lab.g_camids, p["penalty"]))
    state.camera_penalty += p["penalty"]


@register_step("rerank", DISTANCES, "k-reciprocal re-ranking (Zhong et al. 2017)",
               k1=Param(int, 20, "k-reciprocal neighbours", minimum=1),
               k2=Param(int, 6, "neighbours for local query expansion", minimum=1),
               **{"lambda": Param(float, 0.3, "weight of the original distance", minimum=0, maximum=1)},
               camera_aware=Param(bool, True, "after a camera_penalty step, penalise same-camera pairs in the "
                                              "query×query and gallery×gallery distances too"))
def _rerank(state: State, p: Dict[str, Any]) -> None:
    if state.num_query + state.num_gallery <= state.dense_rerank_max:
        qg = state.distances()
        qq = block_distance(state.blocks, "query", "query", state.metric)
        gg = block_distance(state.blocks, "gallery", "gallery", state.metric)
        if p["camera_aware"] and state.camera_penalty:
            # Camera-aware neighbourhoods: otherwise an image's k-reciprocal set fills up with other
            # vehicles seen by its own camera (shared background and colour cast), and re-ranking
            # pulls exactly the same-camera look-alikes the penalty pushed away back up.
            lab = state.labels
            qq = _penalise_same_camera(qq, lab.q_camids, state.camera_penalty)
            gg = _penalise_same_camera(gg, lab.g_camids, state.camera_penalty)
        state.dist = np.asarray(re_ranking(qg, qq, gg, k1=p["k1"], k2=p["k2"], lambda_value=p["lambda"]),
                                dtype=np.float32)
        return
    qf, gf = concat_equivalent(state.blocks, "query"), concat_equivalent(state.blocks, "gallery")
    depth = min(state.depth, state.num_gallery)
    idx, dist = re_ranking_features(qf, gf, p["k1"], p["k2"], p["lambda"], topk=depth, metric=state.metric)
    idx, dist = np.asarray(idx), np.asarray(dist, dtype=np.float32)
    if state.dist is not None:
        extra = np.take_along_axis(state.dist - state.base_dist, idx, axis=1)
        if np.any(extra):
            order = np.argsort(dist + extra, axis=1, kind="stable")
            idx = np.take_along_axis(idx, order, axis=1)
    state.notes.append(f"rerank: {state.num_query}+{state.num_gallery} images > {state.dense_rerank_max}, "
                       f"used top-{depth} re-ranking from features"
                       + (" (neighbourhoods not camera-aware)" if p["camera_aware"] and state.camera_penalty else ""))
    state.dist = None
    state.ranking = idx


def _penalise_same_camera(dist: np.ndarray, camids: np.ndarray, penalty: float) -> np.ndarray:
    """``dist`` (square, one split against itself) plus ``penalty`` on same-camera pairs, the diagonal kept."""
    out = same_camera_penalty(dist, camids, camids, penalty)
    np.fill_diagonal(out, np.diagonal(dist))
    return out


@register_step("track_distance", DISTANCES, "replace each gallery distance by the closest distance of its track")
def _track_distance(state: State, p: Dict[str, Any]) -> None:
    state.set_distances(track_group_distance(state.distances(), _gallery_tracks(state)))


@register_step("track_expand", RANKING, "walk the ranking and insert whole tracks in order")
def _track_expand(state: State, p: Dict[str, Any]) -> None:
    ranking = state.rank(state.num_gallery if state.ranking is None else state.ranking.shape[1])
    state.ranking = np.asarray(track_expand(ranking, _gallery_tracks(state), topk=state.depth))
    state.dist = None


def _gallery_tracks(state: State) -> np.ndarray:
    tracks = state.labels.g_tracks
    if tracks is None or (tracks < 0).all():
        raise PipelineError("needs gallery tracks (AIC20: test_track.txt), but the dataset has none")
    return tracks
