"""``aic``: the AI City Challenge's score, mAP over the submitted top-K ranking (no camera filtering)."""
from __future__ import annotations

from post_processing.evaluation import aic_map, evaluate, evaluate_ranking

from . import PROTOCOLS, is_ranking


@PROTOCOLS.register("aic")
def _aic_protocol(dist, q_pids, g_pids, q_camids, g_camids, topk: int = 100, max_rank: int = 50) -> dict:
    """``{"mAP": AP@topk of each query's top-``topk`` list averaged over queries (:func:`aic_map`), "topk",
    "full_mAP", "mINP", "cmc", "num_valid"}``: the challenge's mAP is the primary one (what training
    validation keeps ``best.pth`` by); the Market-rule mAP of the whole ranking is ``full_mAP`` and mINP/CMC
    are the Market rule's. ``dist`` may also be integer rankings (best first)."""
    market = (evaluate_ranking if is_ranking(dist) else evaluate)(dist, q_pids, g_pids, q_camids, g_camids,
                                                                   max_rank=max_rank)
    return {"mAP": aic_map(dist, q_pids, g_pids, topk=topk), "topk": topk, "full_mAP": market["mAP"],
            "mINP": market["mINP"], "cmc": market["cmc"], "num_valid": market["num_valid"]}
