"""Evaluation protocols by name: ``PROTOCOLS`` maps a name to
``protocol(dist, q_pids, g_pids, q_camids, g_camids, **options) -> dict`` (at least ``"mAP"``).

``market`` (also VeRi-776, VeRi-Wild, CUHK03-new, FVRID) and ``cuhk03`` (classic single-shot) are
the kernels of :mod:`post_processing.evaluation`; every other protocol is one module of this
package (``vehicleid``, ``aic``), imported when a name is looked up, or a module of the
``reid_ensemble.plugins`` entry-point group. A new protocol is one new module here registering one
function with ``@PROTOCOLS.register("name")``; :func:`evaluate_protocol` runs any of them.
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional

from post_processing.errors import ReidUsageError
from post_processing.evaluation import evaluate, evaluate_cuhk03
from post_processing.registry import Registry, import_submodules

__all__ = ["PROTOCOLS", "evaluate_protocol"]


def _discover(name: Optional[str]) -> None:
    import_submodules(__name__)


PROTOCOLS: Registry[Callable[..., dict]] = Registry("evaluation protocol", discover=_discover)
PROTOCOLS.register("market", evaluate)
PROTOCOLS.register("cuhk03", evaluate_cuhk03)


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
