"""The readable reference: Zhong et al.'s k-reciprocal re-ranking as the widely used code writes
it (fast-reid ``evaluation/rerank.py``, torchreid), transcribed line by line into numpy.

It builds the (q+g)² matrices and loops in Python, so it is slow and memory-hungry; it defines what
:func:`~post_processing.rerank.re_ranking` computes. The tests check the kernels against it and
``scripts/bench/rerank.py`` times it as the baseline. ``argsort_kind="stable"`` (the default) gives
ties the order the kernels use; ``"quicksort"`` is the original's default argsort.
"""
from __future__ import annotations

import numpy as np


def reference_re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3, argsort_kind="stable"):
    """Re-ranked q×g distances, computed exactly as the widely used implementation does."""
    q = q_g_dist.shape[0]
    dist = np.block([[q_q_dist, q_g_dist], [q_g_dist.T, g_g_dist]])
    dist = np.power(dist, 2).astype(np.float32)
    dist = np.transpose(1.0 * dist / np.max(dist, axis=0))
    n = dist.shape[0]
    rank = np.argsort(dist, kind=argsort_kind).astype(np.int32)
    half = int(np.around(k1 / 2.0))

    def reciprocal(i, k):
        forward = rank[i, :k + 1]
        return forward[np.where(rank[forward, :k + 1] == i)[0]]

    V = np.zeros_like(dist)
    for i in range(n):
        k_rec = reciprocal(i, k1)
        expansion = k_rec
        for c in k_rec:
            c_rec = reciprocal(c, half)
            if len(np.intersect1d(c_rec, k_rec)) > 2.0 / 3 * len(c_rec):
                expansion = np.append(expansion, c_rec)
        expansion = np.unique(expansion)
        weight = np.exp(-dist[i, expansion])
        V[i, expansion] = 1.0 * weight / np.sum(weight)
    dist = dist[:q]
    if k2 != 1:
        V = np.stack([np.mean(V[rank[i, :k2], :], axis=0) for i in range(n)])
    inverted = [np.where(V[:, c] != 0)[0] for c in range(n)]
    jaccard = np.zeros_like(dist)
    for i in range(q):
        shared = np.zeros((1, n), np.float32)
        for c in np.where(V[i] != 0)[0]:
            rows = inverted[c]
            shared[0, rows] = shared[0, rows] + np.minimum(V[i, c], V[rows, c])
        jaccard[i] = 1 - shared / (2.0 - shared)
    final = jaccard * (1 - lambda_value) + dist * lambda_value
    return final[:, q:]
