"""``re_ranking``: k-reciprocal re-ranking from the three distance matrices (query×gallery,
query×query, gallery×gallery), with the API of the widely used implementation."""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ._jaccard_kernels import _final_dense, _gather_dense
from ._neighbour_kernels import _NO_INDEX, _expansion_sets, _scan_cols, _scan_rows
from ._steps import (RerankError, _blend_constants, _check_max, _check_params, _expand_and_invert, _show, _sizes,
                     _weights)

_COL_CHUNK = 4096  # columns per kernel launch: one progress-bar step


def _as_dist(x, name):
    """``x`` as a C-contiguous 2-D float32/float64 matrix (other real dtypes become float64)."""
    a = np.asarray(x)
    if a.ndim != 2:
        raise RerankError(f"{name} must be a 2-D distance matrix, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise RerankError(f"{name} must hold real numbers, got dtype {a.dtype}")
    dt = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
    return np.ascontiguousarray(a, dtype=dt)


def _abs_max(M, axis, name):
    """``max(float32(M²), axis)``, i.e. the square of the largest magnitude (squaring is monotone)."""
    big = np.maximum(M.max(axis=axis), -M.min(axis=axis))
    if not np.isfinite(big).all():
        raise RerankError(f"{name} contains NaN or infinite values")
    return (big * big).astype(np.float32)


def _column_max(q_g, q_q, g_g):
    """Column maxima of the squared stacked matrix ``[[q_q, q_g], [q_gᵀ, g_g]]``: the reference's
    per-item normaliser."""
    q, g = q_g.shape
    col_max = np.empty(q + g, np.float32)
    col_max[:q] = np.maximum(_abs_max(q_q, 0, "q_q_dist"), _abs_max(q_g, 1, "q_g_dist"))
    col_max[q:] = np.maximum(_abs_max(q_g, 0, "q_g_dist"), _abs_max(g_g, 0, "g_g_dist"))
    _check_max(col_max, q, "re_ranking")
    return col_max


def _neighbour_table(q_g, q_q, g_g, col_max, width, bar):
    """Each item's ``width`` nearest items (queries first, then gallery), ranked by normalised
    squared distance, ties to the lower index; every matrix is read column block by column block."""
    q, g = q_g.shape
    n = q + g
    top_values = np.full((n, width), np.inf, np.float32)
    neighbours = np.full((n, width), _NO_INDEX, np.int32)
    seen = np.zeros(n, np.float32)
    for c0 in range(0, q, _COL_CHUNK):
        c1 = min(q, c0 + _COL_CHUNK)
        _scan_cols(q_q, c0, c1, 0, 0, col_max, top_values, neighbours, seen)
        _scan_rows(q_g, c0, c1, q, 0, col_max, top_values, neighbours, seen)
        bar.update(2)
    for c0 in range(0, g, _COL_CHUNK):
        c1 = min(g, c0 + _COL_CHUNK)
        _scan_cols(q_g, c0, c1, 0, q, col_max, top_values, neighbours, seen)
        _scan_cols(g_g, c0, c1, q, q, col_max, top_values, neighbours, seen)
        bar.update(2)
    return neighbours


def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3,
               weight_dtype=np.float32, progress=None):
    """k-reciprocal re-ranked q×g distances from plain (e.g. euclidean) distance matrices.

    Same arguments and float32 result as the widely used ``re_ranking`` (see the package
    docstring; ties between equal distances are ranked lower index first). Memory stays near the
    size of the inputs: no (q+g)² matrix is built. ``weight_dtype=np.float16`` halves the sparse
    weights' memory at the cost of ~1e-3 precision. ``progress`` (None: only for large inputs)
    shows a tqdm bar.
    """
    wdt = _check_params(k1, k2, lambda_value, weight_dtype)
    q_g, q_q, g_g = _as_dist(q_g_dist, "q_g_dist"), _as_dist(q_q_dist, "q_q_dist"), _as_dist(g_g_dist, "g_g_dist")
    q, g = q_g.shape
    if q_q.shape != (q, q):
        raise RerankError(f"q_q_dist must be {q}×{q} (q_g_dist is {q}×{g}), got {q_q.shape[0]}×{q_q.shape[1]}")
    if g_g.shape != (g, g):
        raise RerankError(f"g_g_dist must be {g}×{g} (q_g_dist is {q}×{g}), got {g_g.shape[0]}×{g_g.shape[1]}")
    if q == 0 or g == 0:
        raise RerankError(f"need at least one query and one gallery item, got q={q}, g={g}")
    n = q + g
    sizes = _sizes(n, k1, k2)
    steps = 2 * (-(-g // _COL_CHUNK)) + 2 * (-(-q // _COL_CHUNK)) + 4
    with tqdm(total=steps, desc="re-ranking", disable=not _show(progress, n * n, 1e9)) as bar:
        col_max = _column_max(q_g, q_q, g_g)
        bar.update(1)
        neighbours = _neighbour_table(q_g, q_q, g_g, col_max, sizes.table, bar)

        indptr, indices = _expansion_sets(neighbours, sizes.k1_forward, sizes.half_forward)
        b_values = np.empty(indices.shape[0], np.float32)
        _gather_dense(indptr, indices, q_q, q_g, g_g, col_max, q, b_values)
        data = _weights(indptr, b_values, wdt)
        bar.update(1)
        encoded = _expand_and_invert(indptr, indices, data, neighbours, sizes.qe_rows, k2, q, n, wdt)
        bar.update(1)
        out = np.empty((q, g), np.float32)
        jaccard_weight, distance_weight = _blend_constants(lambda_value)
        _final_dense(*encoded, q_g, col_max, jaccard_weight, distance_weight, out)
        bar.update(1)
    return out
