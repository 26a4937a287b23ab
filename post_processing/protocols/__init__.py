"""Evaluation protocols by name: ``PROTOCOLS`` maps a name to
``protocol(dist, q_pids, g_pids, q_camids, g_camids, **options) -> dict`` (at least ``"mAP"``).

``market`` (also VeRi-776, VeRi-Wild, CUHK03-new, FVRID, the person sets) and ``cuhk03``
(classic single-shot) are the kernels of :mod:`post_processing.evaluation`; every other protocol
is one module of this package (``vehicleid``, ``aic``), imported when a name is looked up, or a
module of the ``reid_ensemble.plugins`` entry-point group. A new protocol is one new module here
registering one function with ``@PROTOCOLS.register("name")``; :func:`evaluate_protocol` runs any
of them. ``market``, ``cuhk03`` and ``aic`` also score a ready top-K ranking (an integer Q×K array
of gallery indices, best first) instead of distances: what ``ensemble fuse``/``evaluate`` score.
A protocol marked :func:`whole_test_set` (``vehicleid``) draws its own query/gallery splits: it
takes the N×N distances of the whole test set as both query and gallery, never a ranking.
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional

from post_processing.errors import ReidUsageError
import numpy as np

from post_processing.evaluation import evaluate, evaluate_cuhk03, evaluate_cuhk03_ranking, evaluate_ranking
from post_processing.registry import Registry, import_submodules

__all__ = ["PROTOCOLS", "evaluate_protocol", "is_ranking", "is_whole_test_set", "whole_test_set"]


def _discover(name: Optional[str]) -> None:
    import_submodules(__name__)


PROTOCOLS: Registry[Callable[..., dict]] = Registry("evaluation protocol", discover=_discover)


def whole_test_set(protocol: Callable[..., dict]) -> Callable[..., dict]:
    """Marks a protocol that scores the whole test set against itself and draws its splits itself."""
    protocol.whole_test_set = True
    return protocol


def is_whole_test_set(name: str) -> bool:
    """Whether protocol ``name`` takes the whole test set's N×N distances (see :func:`whole_test_set`)."""
    return bool(getattr(PROTOCOLS.get(name), "whole_test_set", False))


def is_ranking(dist_or_ranking) -> bool:
    """An integer array is a ranking of gallery indices; a float array a distance matrix."""
    return np.issubdtype(np.asarray(dist_or_ranking).dtype, np.integer)


@PROTOCOLS.register("market")
def _market_protocol(dist, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50) -> dict:
    """:func:`evaluate` on distances, :func:`evaluate_ranking` on a top-K ranking."""
    fn = evaluate_ranking if is_ranking(dist) else evaluate
    return fn(dist, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)


@PROTOCOLS.register("cuhk03")
def _cuhk03_protocol(dist, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50, repeats: int = 10,
                     seed: int = 0) -> dict:
    """:func:`evaluate_cuhk03` on distances, :func:`evaluate_cuhk03_ranking` on a top-K ranking."""
    fn = evaluate_cuhk03_ranking if is_ranking(dist) else evaluate_cuhk03
    return fn(dist, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank, repeats=repeats, seed=seed)


def evaluate_protocol(name: str, dist, q_pids, g_pids, q_camids, g_camids, **options) -> dict:
    """Evaluate ``dist`` (queries × gallery) with the protocol registered as ``name``; ``options``
    are that protocol's keyword arguments (e.g. ``max_rank``, ``repeats``, ``topk``)."""
    protocol = PROTOCOLS.get(name)
    try:
        inspect.signature(protocol).bind(dist, q_pids, g_pids, q_camids, g_camids, **options)
    except TypeError as exc:
        accepted = list(inspect.signature(protocol).parameters)[5:]
        raise ReidUsageError(f"evaluation protocol {name!r}: {exc}; its options are "
                             f"{', '.join(accepted) or 'none'}") from exc
    return protocol(dist, q_pids, g_pids, q_camids, g_camids, **options)
