"""`ensemble tune`: search fusion weights, fusion method and step parameters on a labelled split.

The search space is a grid: one weight value per model (from ``weights``), a fusion method, and for
every step of the base pipeline each parameter that has a grid: its :class:`Param`'s ``grid``
(re-ranking's ``k1``/``k2``/``lambda`` among the built-ins) unless ``grids`` overrides it. ``grid``
search scores every point; ``random`` scores ``budget`` points drawn without replacement (all of
them when the grid is smaller). The base pipeline itself is always trial 0, so the result is never
worse than what you started from on this split. Tuning and scoring on the same split overfits it:
keep a held-out split (or the challenge server) for the final word.

:func:`ascend` is the competition recipe on such a held-out (validation) split: coordinate ascent
over the models' weights (when split-half cross-validation on the split says tuned weights beat equal
ones: :mod:`ensembles.weight_search`) and then over candidate steps, each kept only when it gains,
with the validation table behind every choice (:class:`AscentResult`).
"""
from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from post_processing.errors import ReidError
from post_processing.submission import TOPK

from .inputs import Inputs
from .pipeline import DENSE_RERANK_MAX, STEPS, Param, Pipeline
from .report import per_query_scores, score
from .run import make_state, run_ensemble
from .weight_search import Config, coordinate_ascent, cross_validate, equal_config

OBJECTIVES = ("mAP", "aic_map")


class TuneError(ReidError, ValueError):
    """Bad search space or budget."""


@dataclass
class SearchSpace:
    """Weight values tried per model, fusion methods, and ``grids[(step, key)]`` replacing a parameter's
    default ``Param.grid`` (the command line's ``--weight-grid``/``--fusions`` hold the usual values)."""

    weights: Sequence[float]
    fusions: Sequence[str]
    grids: Mapping[Tuple[str, str], Sequence[object]] = field(default_factory=dict)


@dataclass
class Trial:
    pipeline: Pipeline
    scores: Dict[str, object]
    objective: float = field(default=0.0)


def _axes(base: Pipeline, space: SearchSpace) -> List[Tuple[str, list]]:
    """(name, values) per searched dimension; weight tuples are deduplicated by their ratios."""
    if not all(math.isfinite(w) and w >= 0 for w in space.weights):
        raise TuneError(f"--weight-grid: expected weights >= 0, got {list(space.weights)}")
    axes: List[Tuple[str, list]] = []
    if len(base.models) > 1:
        seen, combos = set(), []
        for combo in _product([sorted(set(space.weights))] * len(base.models)):
            total = sum(combo)
            if total <= 0:
                continue
            key = tuple(round(w / total, 6) for w in combo)
            if key not in seen:
                seen.add(key)
                combos.append(combo)
        axes.append(("weights", combos))
    axes.append(("fusion", list(space.fusions)))
    for i, step in enumerate(base.steps):
        for key, param in STEPS.get(step.name).params.items():
            values = space.grids.get((step.name, key), param.grid)
            if values is not None:
                axes.append((f"{i}.{key}", [_checked(param, step.name, key, v) for v in values]))
    return axes


def _checked(param: Param, step: str, key: str, value: object) -> object:
    """``value`` checked against the step's :class:`Param`, naming the grid option it came from."""
    try:
        return param.check(value)
    except ValueError as e:
        option = f"--{step}-{key}-grid".replace("_", "-")
        raise TuneError(f"{option} (step {step!r}, key {key!r}): {e}") from None


def _product(lists: Sequence[Sequence]) -> List[tuple]:
    out: List[tuple] = [()]
    for values in lists:
        out = [prefix + (v,) for prefix in out for v in values]
    return out


def _point(axes: List[Tuple[str, list]], index: int) -> Dict[str, object]:
    """The ``index``-th grid point (mixed-radix decoding, so huge grids are never materialised)."""
    point = {}
    for name, values in reversed(axes):
        index, j = divmod(index, len(values))
        point[name] = values[j]
    return point


def _apply(base: Pipeline, point: Dict[str, object]) -> Pipeline:
    pipe = copy.deepcopy(base)
    for name, value in point.items():
        if name == "weights":
            pipe.weights = {m: float(w) for m, w in zip(pipe.models, value)}
        elif name == "fusion":
            pipe.fusion = value
        else:
            i, key = name.split(".")
            pipe.steps[int(i)].params[key] = value
    return pipe


def grid_size(base: Pipeline, space: SearchSpace) -> int:
    size = 1
    for _, values in _axes(base, space):
        size *= len(values)
    return size


def tune(inputs: Inputs, base: Pipeline, space: SearchSpace, budget: int = 50, search: str = "random",
         seed: int = 0, objective: str = "mAP", topk: int = TOPK, dense_rerank_max: int = DENSE_RERANK_MAX,
         log: Optional[Callable[[str], None]] = None, knn: Optional[str] = None) -> List[Trial]:
    """Scores the base pipeline and the chosen grid points; returns the trials, best first. ``knn``:
    neighbour backend of the top-K re-ranking (see ``run_ensemble``)."""
    if not inputs.labels.has_gt:
        raise TuneError("tuning needs ground truth (AIC20: query_label.xml and test_label.xml)")
    if objective not in OBJECTIVES:
        raise TuneError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    candidates = plan_trials(base, space, budget, search, seed)
    trials: List[Trial] = []
    for n, pipe in enumerate(candidates):
        pipe.validate("tune candidate")
        scores = _scores(inputs, pipe, topk, dense_rerank_max, knn)
        trials.append(Trial(pipe, scores, float(scores[objective])))
        if log is not None:
            log(f"trial {n:3d}/{len(candidates) - 1}: {objective} {100 * trials[-1].objective:6.2f}  {describe(pipe)}")
    return sorted(trials, key=lambda t: -t.objective)


def _scores(inputs: Inputs, pipe: Pipeline, topk: int, dense_rerank_max: int,
            knn: Optional[str] = None) -> Dict[str, object]:
    """The scores of ``pipe``'s final stage on ``inputs`` (nothing written)."""
    result = run_ensemble(inputs, pipe, topk=topk, evaluate=False, dense_rerank_max=dense_rerank_max, knn=knn)
    return score(result.scored, inputs.labels, topk)


def plan_trials(base: Pipeline, space: SearchSpace, budget: int = 50, search: str = "random",
                seed: int = 0) -> List[Pipeline]:
    """The pipelines :func:`tune` scores, ``base`` first; checks the space and budget without any data, so
    a bad grid value fails before anything is loaded."""
    if budget < 1:
        raise TuneError(f"budget must be >= 1, got {budget}")
    axes = _axes(base, space)
    if any(not values for _, values in axes):
        raise TuneError(f"empty search dimension: {', '.join(n for n, v in axes if not v)}")
    size = grid_size(base, space)
    if search == "grid":
        if size > budget:
            raise TuneError(f"the grid has {size} points, more than --budget {budget}; raise the budget, "
                            f"shrink the grids or use random search")
        indices = list(range(size))
    elif search == "random":
        indices = sorted(random.Random(seed).sample(range(size), min(budget, size)))
    else:
        raise TuneError(f"search must be grid or random, got {search!r}")
    return [base] + [_apply(base, _point(axes, i)) for i in indices]


def describe(pipe: Pipeline) -> str:
    """One line: fusion, weights and step labels."""
    w = ",".join(f"{m}={pipe.weights.get(m, 1.0):g}" for m in pipe.models)
    return " ".join([pipe.fusion, w] + [s.label() for s in pipe.steps])


# ----------------------------------------------------------------------------- coordinate ascent

# The steps `ascend` tries, in the order it tries them, each with the parameter sets it scores. The
# camera penalty goes first: query expansion and DBA are camera-aware once it is in the pipeline.
CANDIDATES: Tuple[Tuple[str, Tuple[Dict[str, object], ...]], ...] = (
    ("camera_penalty", ({"penalty": 0.1}, {"penalty": 0.3}, {"penalty": 1.0})),
    ("metric", ({"method": "lfda", "pca_dim": 64}, {"method": "lfda", "pca_dim": 128})),
    ("dba", ({"k": 1}, {"k": 2}, {"k": 4})),
    ("qe", ({"k": 1}, {"k": 2}, {"k": 4}, {"k": 2, "alpha": 3.0}, {"k": 6, "alpha": 3.0})),
    ("rerank", ({"k1": 20, "k2": 6, "lambda": 0.3}, {"k1": 10, "k2": 3, "lambda": 0.3},
                {"k1": 30, "k2": 6, "lambda": 0.5})),
    ("track_distance", ({},)),
)


@dataclass
class AscentResult:
    """The chosen pipeline and the validation table behind it (one row per scored variant)."""

    pipeline: Pipeline
    table: List[Dict[str, object]]
    trials: int

    def kept(self) -> List[Dict[str, object]]:
        return [r for r in self.table if r.get("kept")]


class _Scorer:
    """Scores pipelines on the (validation) inputs, each distinct pipeline once, within ``budget``."""

    def __init__(self, inputs: Inputs, objective: str, budget: int, topk: int, dense_rerank_max: int,
                 log: Optional[Callable[[str], None]], knn: Optional[str] = None):
        self.inputs, self.objective, self.budget = inputs, objective, budget
        self.topk, self.dense_rerank_max, self.log, self.knn = topk, dense_rerank_max, log, knn
        self.cache: Dict[str, Dict[str, object]] = {}

    @property
    def left(self) -> int:
        return self.budget - len(self.cache)

    def __call__(self, pipe: Pipeline) -> Optional[Dict[str, object]]:
        """The pipeline's scores, or None once the budget is spent (cached pipelines are free)."""
        key = repr(pipe.to_dict())
        if key not in self.cache:
            if self.left <= 0:
                return None
            pipe.validate("tune candidate")
            self.cache[key] = _scores(self.inputs, pipe, self.topk, self.dense_rerank_max, self.knn)
            if self.log is not None:
                self.log(f"trial {len(self.cache):3d}: {self.objective} "
                         f"{100 * float(self.cache[key][self.objective]):6.2f}  {describe(pipe)}")
        return self.cache[key]

    def value(self, scores: Optional[Dict[str, object]]) -> float:
        return -math.inf if scores is None else float(scores[self.objective])


def _fusion_pipeline(models: Sequence[str], config: Config) -> Pipeline:
    """The step-free pipeline of a fusion weighting (method, one weight per model)."""
    return Pipeline(list(models), dict(zip(models, config[1])), config[0])


def _per_query(inputs: Inputs, models: Sequence[str], objective: str, topk: int
               ) -> Callable[[Config], Optional[np.ndarray]]:
    """Each query's ``objective`` share for a fusion weighting of ``models`` (no steps), for the
    cross-validation of the weights; None where the protocol has no per-query score."""

    def per_query(config: Config):
        if inputs.whole_test_set:
            return None
        state = make_state(inputs, _fusion_pipeline(models, config), topk=topk)
        return per_query_scores(state.rank(topk), inputs.labels, objective, topk)

    return per_query


def _with_step(pipe: Pipeline, name: str, params: Mapping[str, object]) -> Pipeline:
    """``pipe`` plus step ``name`` (replacing one of that name), the steps kept in canonical order."""
    from .pipeline import Step, canonical_order

    order = canonical_order()
    out = copy.deepcopy(pipe)
    out.steps = [s for s in out.steps if s.name != name] + [Step.make(name, "tune candidate", **params)]
    out.steps.sort(key=lambda s: order.index(s.name))
    return out


def ascend(inputs: Inputs, models: Sequence[str], budget: int = 80, objective: str = "mAP",
           weights: Sequence[float] = (0.0, 0.5, 1.0, 2.0), fusions: Sequence[str] = ("concat", "distance"),
           candidates: Sequence[Tuple[str, Sequence[Mapping[str, object]]]] = CANDIDATES, min_gain: float = 0.001,
           topk: int = TOPK, dense_rerank_max: int = DENSE_RERANK_MAX,
           log: Optional[Callable[[str], None]] = None, knn: Optional[str] = None,
           cv_splits: int = 50, seed: int = 0) -> AscentResult:
    """Coordinate ascent on a labelled (validation) split, each move kept only if it gains.

    1. each model alone; 2. the fusion: method, then each model's weight in turn over ``weights``
    (0 leaves the model out of the fusion, still scored alone; passes repeat while a weight moves) —
    unless ``cv_splits`` random halves of the split's queries say that weights tuned on one half score
    lower on the other than equal weights do (:func:`ensembles.weight_search.cross_validate`, seeded
    by ``seed``; 0 splits: always tune), when every model keeps weight 1 and the first fusion method;
    3. each candidate step in turn, its
    parameter sets scored on top of the pipeline so far, the best kept when it gains at least
    ``min_gain`` (mAP as a fraction) over the pipeline without it. ``budget`` caps the distinct
    pipelines scored; the weights stop early enough to leave every candidate variant its turn. The table
    records every scored variant with its gain and whether it was kept. ``knn``: neighbour backend of
    the top-K re-ranking (see ``run_ensemble``).
    """
    if not inputs.labels.has_gt:
        raise TuneError("tuning needs ground truth (a validation split, or query_label.xml and test_label.xml)")
    if objective not in OBJECTIVES:
        raise TuneError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if budget < len(models) + 1:
        raise TuneError(f"budget {budget} is too small: the models alone and their fusion need {len(models) + 1}")
    # A validation gallery can be smaller than a submission's depth: rank all of it then.
    run = _Scorer(inputs, objective, budget, min(topk, len(inputs.labels.g_pids)), dense_rerank_max, log, knn)
    table: List[Dict[str, object]] = []

    def row(stage: str, label: str, scores, gain: Optional[float], kept: bool, why: str,
            step: Optional[Dict[str, object]] = None) -> None:
        shown = {k: v for k, v in scores.items() if k != "cmc"} if scores else None
        table.append({"stage": stage, "label": label, "scores": shown, "gain": gain, "kept": kept, "why": why,
                      **({"step": step} if step else {})})

    singles = {}
    for m in models:
        scores = run(Pipeline([m], {m: 1.0}))
        singles[m] = run.value(scores)
        row("model", f"model {m}", scores, None, False, "single model")
    best_single = max(singles.values())
    cv = cross_validate(_per_query(inputs, models, objective, run.topk), len(models), weights, fusions,
                        splits=cv_splits, seed=seed)
    if cv is not None and log is not None:
        log(cv.sentence(objective))

    reserve = sum(len(variants) for _, variants in candidates)  # the steps' turn comes after the weights'
    if cv is not None and cv.chosen == "equal":
        config = equal_config(len(models), fusions)
        how = cv.sentence(objective)
    else:
        config, _ = coordinate_ascent(lambda c: run.value(run(_fusion_pipeline(models, c))), len(models), weights,
                                      fusions, can_try=lambda: run.left > reserve)
        how = "best fusion method and weights on this split" + (f" ({cv.sentence(objective)})" if cv else "")
    best = _fusion_pipeline(models, config)
    best_value = run.value(run(best))
    for r, m in zip(table, models):
        r["kept"] = best.weights[m] > 0
        r["why"] = (f"fused with weight {best.weights[m]:g}" if r["kept"] else
                    "weight 0: the fusion scores best without it (still scored alone)")
    dropped = [m for m in models if best.weights[m] <= 0]
    row("fusion", f"fusion {describe(best)}", run(best), best_value - best_single, True,
        how + (f"; weight 0: {', '.join(dropped)}" if dropped else ""))
    if cv is not None:
        table[-1]["cross_validation"] = {"chosen": cv.chosen, "held_out": cv.held_out, "splits": cv.splits,
                                         "queries": cv.queries, "weightings": cv.configs, "seed": seed}
    for name, variants in candidates:
        scored = []
        for params in variants:
            trial = _with_step(best, name, params)
            scores = run(trial)
            if scores is None:
                break
            scored.append((run.value(scores), trial, scores))
        if not scored:
            row("step", name, None, None, False, "not tried: budget spent")
            continue
        value, trial, scores = max(scored, key=lambda t: t[0])
        for v, t, s in scored:
            if t is not trial:
                row("variant", f"  {_step_label(t, name)}", s, v - best_value, False, "a better variant was found")
        gain = value - best_value
        kept = gain >= min_gain
        row("step", _step_label(trial, name), scores, gain, kept,
            f"{'gains' if kept else 'does not gain'} {100 * gain:+.2f} {objective} on this split"
            + ("" if kept else f" (needs {100 * min_gain:+.2f})"),
            step={"name": name, **next(s.params for s in trial.steps if s.name == name)})
        if kept:
            best, best_value = trial, value
    return AscentResult(best, table, len(run.cache))


def _step_label(pipe: Pipeline, name: str) -> str:
    return "+ " + next(s.label() for s in pipe.steps if s.name == name)


def _dropped_steps(pipeline: Pipeline) -> List[Dict[str, object]]:
    rows = (pipeline.validation or {}).get("rows") or []
    return [r for r in rows if r.get("stage") == "step" and not r.get("kept") and r.get("step")]


def replay_needs_train(pipeline: Pipeline) -> bool:
    """A step :func:`replay_dropped` replays reads the training features (metric learning)."""
    return any(STEPS.get(str(r["step"]["name"])).needs_train for r in _dropped_steps(pipeline))


def replay_dropped(inputs: Inputs, pipeline: Pipeline, topk: int = TOPK, dense_rerank_max: int = DENSE_RERANK_MAX,
                   knn: Optional[str] = None) -> List[Dict[str, object]]:
    """What each step the tuner tried and dropped (``pipeline.validation`` rows) would have done on
    ``inputs`` (the test split): reported beside the chosen pipeline, never used to choose."""
    base = None
    out: List[Dict[str, object]] = []
    for r in _dropped_steps(pipeline):
        if base is None:
            base = _scores(inputs, pipeline, topk, dense_rerank_max, knn)
        params = {k: v for k, v in r["step"].items() if k != "name"}
        trial = _with_step(pipeline, str(r["step"]["name"]), params)
        scores = _scores(inputs, trial, topk, dense_rerank_max, knn)
        out.append({"label": r["label"], "validation_gain": r.get("gain"), "scores": scores,
                    "gain": float(scores["mAP"]) - float(base["mAP"])})
    return out
