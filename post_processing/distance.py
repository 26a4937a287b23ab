"""Pairwise distances between feature sets, in float32 and in row blocks so memory stays bounded.

Besides the (len(a), len(b)) result, the temporaries never exceed ``block_rows × len(b)`` floats,
so an AIC-scale query×gallery or gallery×gallery matrix can be built without a float64 copy.
"""
from __future__ import annotations

import numpy as np

from .errors import ReidError, ReidUsageError

__all__ = ["METRICS", "DistanceError", "MetricError", "pairwise_distance", "topk_smallest"]

METRICS = ("euclidean", "sqeuclidean", "cosine")


class DistanceError(ReidError, ValueError):
    """Features or distances that cannot be compared: wrong shape or dtype, mismatched widths, zero
    rows under cosine, NaN distances."""


class MetricError(DistanceError, ReidUsageError):
    """A distance metric name that is not one of :data:`METRICS` (a wrong option value)."""


def _as_matrix(x, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise DistanceError(f"{what} must be a 2-D array (N×D), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise DistanceError(f"{what} must be numeric, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _norms(x: np.ndarray, what: str) -> np.ndarray:
    n = np.sqrt(np.einsum("ij,ij->i", x, x))
    zero = np.flatnonzero(n == 0)
    if zero.size:
        raise DistanceError(f"cosine distance: {what} row {int(zero[0])} has zero norm")
    return n


def pairwise_distance(a, b, metric: str = "euclidean", block_rows: int = 1024) -> np.ndarray:
    """Distances between the rows of ``a`` (N×D) and ``b`` (M×D) as a float32 N×M matrix.

    ``euclidean`` / ``sqeuclidean`` use |a|² + |b|² − 2·a·bᵀ clamped at 0 (then sqrt);
    ``cosine`` is 1 − cos, clamped to [0, 2]. Rows of ``a`` are processed ``block_rows`` at a time.
    """
    if metric not in METRICS:
        raise MetricError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    a = _as_matrix(a, "a")
    b = _as_matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise DistanceError(f"dimension mismatch: a is {a.shape[0]}×{a.shape[1]}, b is {b.shape[0]}×{b.shape[1]}")

    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float32)
    if metric == "cosine":
        b_unit = b / _norms(b, "b")[:, None]
        a_norm = _norms(a, "a")
    else:
        b_sq = np.einsum("ij,ij->i", b, b)
    bt = (b_unit if metric == "cosine" else b).T
    for start in range(0, a.shape[0], block_rows):
        stop = min(start + block_rows, a.shape[0])
        block = out[start:stop]
        if metric == "cosine":
            np.matmul(a[start:stop] / a_norm[start:stop, None], bt, out=block)
            np.subtract(1.0, block, out=block)
            np.clip(block, 0.0, 2.0, out=block)
            continue
        rows = a[start:stop]
        np.matmul(rows, bt, out=block)
        block *= -2.0
        block += np.einsum("ij,ij->i", rows, rows)[:, None]
        block += b_sq[None, :]
        np.maximum(block, 0.0, out=block)
        if metric == "euclidean":
            np.sqrt(block, out=block)
    return out


def topk_smallest(dist_rows, k: int, block_rows: int = 1024) -> np.ndarray:
    """Indices of the ``k`` smallest entries of each row, ascending; ties go to the lower index.

    Same order as the first ``k`` columns of ``np.argsort(dist_rows, axis=1, kind="stable")`` but
    O(M) per row. ``k`` larger than the row length is clipped. NaN entries are refused.
    """
    d = np.asarray(dist_rows)
    if d.ndim == 1:
        return topk_smallest(d[None, :], k, block_rows)[0]
    if d.ndim != 2:
        raise ValueError(f"dist_rows must be 1-D or 2-D, got shape {d.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n, m = d.shape
    k = min(k, m)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block_rows):
        blk = d[start:start + block_rows]
        if np.isnan(blk).any():
            bad = start + int(np.flatnonzero(np.isnan(blk).any(axis=1))[0])
            raise DistanceError(f"dist_rows row {bad} contains NaN")
        thr = np.partition(blk, k - 1, axis=1)[:, k - 1:k]
        below = blk < thr
        # Among entries equal to the k-th value, keep only the lowest indices needed to reach k.
        need = k - below.sum(axis=1, keepdims=True)
        tied = blk == thr
        keep = below | (tied & (np.cumsum(tied, axis=1) <= need))
        cols = np.nonzero(keep)[1].reshape(len(blk), k)
        vals = np.take_along_axis(blk, cols, axis=1)
        out[start:start + len(blk)] = np.take_along_axis(cols, np.argsort(vals, axis=1, kind="stable"), axis=1)
    return out
