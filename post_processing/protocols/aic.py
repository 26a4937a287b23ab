"""``aic``: AI City Challenge mAP over the submitted top-K ranking (no camera filtering)."""
from __future__ import annotations

from post_processing.evaluation import aic_map

from . import PROTOCOLS


@PROTOCOLS.register("aic")
def _aic_protocol(dist, q_pids, g_pids, q_camids, g_camids, topk: int = 100) -> dict:
    """:func:`aic_map` under the protocol convention: ``{"mAP": AP@topk averaged over queries,
    "topk"}``; ``dist`` may also be integer rankings. No camera filtering (the challenge has none)."""
    return {"mAP": aic_map(dist, q_pids, g_pids, topk=topk), "topk": topk}
