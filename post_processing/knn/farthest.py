"""Each item's largest squared distance to a set of vectors: the per-item normaliser of k-reciprocal
re-ranking, found with the same backend as the neighbours.

``max_j |a - x_j|² = |a|² + max_j <(a, 1), (-2 x_j, |x_j|²)>``: a maximum-inner-product search over
augmented vectors, which every backend answers as a nearest-neighbour search (faiss with its
inner-product metric; the exact backend by blocked GEMM). Approximate backends give an
approximate (never larger) maximum.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from post_processing.distance import pairwise_distance

from .base import KNN_BACKENDS, KnnError, _as_vectors, parse_knn

_ROWS = 1024


def farthest_sq(spec: Any, data, queries) -> np.ndarray:
    """``max_j |queries_i - data_j|²`` for every query row (float32), with the ``spec`` backend;
    ``queries`` may be a tuple of arrays (searched as if stacked, without the copy)."""
    s = parse_knn(spec)
    x = _as_vectors(data, None, "data")
    if isinstance(queries, tuple):
        return np.concatenate([farthest_sq(s, x, part) for part in queries])
    q = _as_vectors(queries, x.shape[1], "queries")
    if not len(x):
        raise KnnError("farthest distances need at least one data vector")
    if s.name == "exact":
        out = np.empty(len(q), np.float32)
        cols = max(1, (1 << 26) // _ROWS)
        for r in range(0, len(q), _ROWS):
            best = np.zeros(len(q[r:r + _ROWS]), np.float32)
            for c in range(0, len(x), cols):
                best = np.maximum(best, pairwise_distance(q[r:r + _ROWS], x[c:c + cols], "sqeuclidean").max(axis=1))
            out[r:r + _ROWS] = best
        return out
    backend = KNN_BACKENDS.get(s.name)
    aug = np.concatenate([-2.0 * x, np.einsum("ij,ij->i", x, x)[:, None]], axis=1).astype(np.float32)
    best = backend.max_inner_product(aug, np.concatenate([q, np.ones((len(q), 1), np.float32)], axis=1), s.params)
    return np.maximum(np.einsum("ij,ij->i", q, q) + best, 0).astype(np.float32)
