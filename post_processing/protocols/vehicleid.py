"""``vehicleid``: VehicleID's repeated random gallery draw over the whole test set."""
from __future__ import annotations

import numpy as np

from post_processing.evaluation import EvaluationError, evaluate_vehicleid

from . import PROTOCOLS, whole_test_set


@whole_test_set
@PROTOCOLS.register("vehicleid")
def _vehicleid_protocol(dist, q_pids, g_pids, q_camids, g_camids, repeats: int = 10, seed: int = 0,
                        max_rank: int = 50, names=None, topk: int = 100) -> dict:
    """:func:`evaluate_vehicleid` under the protocol convention: ``dist`` is the N×N distance matrix
    of the whole test set, which is both "query" and "gallery" (the protocol draws the split
    itself), so ``q_pids`` and ``g_pids`` are the same N ids; VehicleID has no cameras. ``names``
    (the N image names) makes the draws those of the loader's ``repeat=0..repeats-1``; ``topk``
    is the depth of the ``aic_map`` it reports beside mAP."""
    q_pids, g_pids = np.asarray(q_pids).reshape(-1), np.asarray(g_pids).reshape(-1)
    if q_pids.shape != g_pids.shape or not np.array_equal(q_pids, g_pids):
        raise EvaluationError("vehicleid protocol: pass the whole test set as both query and gallery (N×N "
                              f"distances, q_pids == g_pids), got {len(q_pids)} query and {len(g_pids)} gallery "
                              "ids that differ")
    if np.issubdtype(np.asarray(dist).dtype, np.integer):
        raise EvaluationError("vehicleid protocol: each draw is ranked within its own gallery, which needs the "
                              "N×N distances of the whole test set, not a top-K ranking")
    return evaluate_vehicleid(dist, q_pids, repeats=repeats, seed=seed, max_rank=max_rank, metric="precomputed",
                              names=names, topk=topk)
