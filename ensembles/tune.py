"""`ensemble tune`: search fusion weights, fusion method and step parameters on a labelled split.

The search space is a grid: one weight value per model (from ``weights``), a fusion method, and for
every step of the base pipeline each parameter that has a grid: its :class:`Param`'s ``grid``
(re-ranking's ``k1``/``k2``/``lambda`` among the built-ins) unless ``grids`` overrides it. ``grid``
search scores every point; ``random`` scores ``budget`` points drawn without replacement (all of
them when the grid is smaller). The base pipeline itself is always trial 0, so the result is never
worse than what you started from on this split. Tuning and scoring on the same split overfits it:
keep a held-out split (or the challenge server) for the final word.
"""
from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from post_processing.errors import ReidError
from post_processing.submission import TOPK

from .inputs import Inputs
from .pipeline import DENSE_RERANK_MAX, STEPS, Param, Pipeline
from .report import score
from .run import run_ensemble

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
        scored = run_ensemble(inputs, pipe, topk=topk, evaluate=False, dense_rerank_max=dense_rerank_max,
                              knn=knn).scored
        scores = score(scored, inputs.labels, topk)
        trials.append(Trial(pipe, scores, float(scores[objective])))
        if log is not None:
            log(f"trial {n:3d}/{len(candidates) - 1}: {objective} {100 * trials[-1].objective:6.2f}  {describe(pipe)}")
    return sorted(trials, key=lambda t: -t.objective)


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
