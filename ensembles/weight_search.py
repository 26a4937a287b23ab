"""Fusion weights: coordinate ascent, and split-half cross-validation of whether to tune them at all.

A small validation split has few queries, and weights fitted to them also fit their noise: the
fused score rises on those queries and falls on others. :func:`cross_validate` measures that on the
split itself: on random halves of its queries each procedure — equal weights, or the coordinate
ascent of ``ensemble tune`` — chooses on one half and is scored on the other; the procedure with the
higher mean held-out score is the one to run on the whole split. It works on per-query scores
(each query's AP in the fused ranking), so a half is scored by averaging, without ranking again.
Plain numpy: the caller supplies the scores (see :func:`ensembles.tune.ascend`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

Config = Tuple[str, Tuple[float, ...]]  # (fusion method, one weight per model)
PROCEDURES = ("equal", "ascent")
MIN_QUERIES = 8  # fewer scored queries than this leave halves too small to say anything


def equal_config(n_models: int, fusions: Sequence[str]) -> Config:
    """Every model weight 1, the first fusion method: where the ascent starts."""
    return (fusions[0], (1.0,) * n_models)


def coordinate_ascent(value: Callable[[Config], float], n_models: int, weights: Sequence[float],
                      fusions: Sequence[str], can_try: Callable[[], bool] = lambda: True) -> Tuple[Config, float]:
    """From equal weights: the best fusion method, then each model's weight in turn over ``weights``
    (a move is kept when it scores higher), passes repeated while a weight moves. ``can_try`` is asked
    before each weight trial (a budget); the fusion methods are always compared."""
    best = equal_config(n_models, fusions)
    best_value = value(best)
    for fusion in fusions[1:]:
        trial = (fusion, best[1])
        v = value(trial)
        if v > best_value:
            best, best_value = trial, v
    moved = n_models > 1
    while moved and can_try():
        moved = False
        for i in range(n_models):
            for w in weights:
                if not can_try():
                    break
                ws = list(best[1])
                ws[i] = float(w)
                if sum(ws) <= 0:
                    continue
                trial = (best[0], tuple(ws))
                v = value(trial)
                if v > best_value + 1e-9:
                    best, best_value, moved = trial, v, True
    return best, best_value


@dataclass
class CrossValidation:
    """What :func:`cross_validate` measured: the mean held-out score of each procedure (``held_out``,
    a fraction), the chosen one, and how many splits and fusion weightings it took."""

    chosen: str
    held_out: Dict[str, float]
    splits: int
    queries: int
    configs: int

    def sentence(self, objective: str) -> str:
        other = next(p for p in PROCEDURES if p != self.chosen)
        return (f"{'weights tuned' if self.chosen == 'ascent' else 'equal weights'}: on {self.splits} random "
                f"halves of the {self.queries} validation queries, {_NAMES[self.chosen]} scored "
                f"{100 * self.held_out[self.chosen]:.2f} {objective} on the held-out half, "
                f"{_NAMES[other]} {100 * self.held_out[other]:.2f}")


_NAMES = {"equal": "equal weights", "ascent": "weights tuned on the other half"}


def cross_validate(per_query: Callable[[Config], Optional[np.ndarray]], n_models: int, weights: Sequence[float],
                   fusions: Sequence[str], splits: int = 50, seed: int = 0) -> Optional[CrossValidation]:
    """Equal weights against :func:`coordinate_ascent` on ``splits`` random halves of the queries.

    ``per_query(config)`` returns each query's score for that weighting (NaN: the query has no valid
    match, the same for every weighting). None when there is nothing to decide (one model, no
    splits) or nothing to decide it with (no per-query scores, fewer than ``MIN_QUERIES`` queries).
    Ties go to equal weights. Deterministic for a ``seed``.
    """
    if n_models < 2 or splits < 1:
        return None
    equal = equal_config(n_models, fusions)
    first = per_query(equal)
    if first is None:
        return None
    valid = ~np.isnan(np.asarray(first, dtype=np.float64))
    if valid.sum() < MIN_QUERIES:
        return None
    cache: Dict[Config, np.ndarray] = {equal: np.asarray(first, dtype=np.float64)[valid]}

    def scores(config: Config) -> np.ndarray:
        if config not in cache:
            cache[config] = np.asarray(per_query(config), dtype=np.float64)[valid]
        return cache[config]

    n = int(valid.sum())
    rng = np.random.default_rng(seed)
    held: Dict[str, list] = {p: [] for p in PROCEDURES}
    for _ in range(splits):
        order = rng.permutation(n)
        fit, test = order[: n // 2], order[n // 2:]
        chosen, _ = coordinate_ascent(lambda c: float(scores(c)[fit].mean()), n_models, weights, fusions)
        held["ascent"].append(float(scores(chosen)[test].mean()))
        held["equal"].append(float(scores(equal)[test].mean()))
    means = {p: float(np.mean(v)) for p, v in held.items()}
    return CrossValidation("ascent" if means["ascent"] > means["equal"] else "equal", means, splits, n, len(cache))
