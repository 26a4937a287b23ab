"""``exact``: brute-force search by blocked numpy GEMM, the default backend.

Same distances as :func:`post_processing.distance.pairwise_distance` and the same tie order as
:func:`~post_processing.distance.topk_smallest` (lower id first); memory beyond the stored vectors
stays under ~256 MB of distance block whatever the gallery size.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from post_processing.distance import pairwise_distance, topk_smallest

from .base import KNN_BACKENDS, KnnIndex

_BLOCK_FLOATS = 1 << 26  # distance-block entries per step (256 MB of float32)


@KNN_BACKENDS.register("exact")
class ExactIndex(KnnIndex):
    """All vectors in one float32 array; every search compares against all of them."""

    name = "exact"
    PARAMS: Dict[str, str] = {}

    def __init__(self, dim, metric="euclidean", params=None):
        super().__init__(dim, metric, params)
        self.vectors = np.zeros((0, self.dim), np.float32)

    def _add(self, x):
        self.vectors = np.concatenate([self.vectors, x]) if len(self.vectors) else x.copy()

    def _search(self, x, k) -> Tuple[np.ndarray, np.ndarray]:
        n = len(self.vectors)
        cols = max(k, min(n, _BLOCK_FLOATS // max(1, len(x))))
        ids, vals = [], []
        for s in range(0, n, cols):
            d = pairwise_distance(x, self.vectors[s:s + cols], "sqeuclidean")
            top = topk_smallest(d, k)
            ids.append(top + s)
            vals.append(np.take_along_axis(d, top, axis=1))
        ids, vals = np.concatenate(ids, axis=1), np.concatenate(vals, axis=1)
        order = np.argsort(vals, axis=1, kind="stable")[:, :k]  # chunks are in id order: ties stay lower-id first
        return np.take_along_axis(ids, order, axis=1), np.take_along_axis(vals, order, axis=1)

    def _state(self):
        return {"vectors": self.vectors}

    def _restore(self, state):
        self.vectors = np.ascontiguousarray(state["vectors"], dtype=np.float32)
