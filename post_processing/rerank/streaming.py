"""``re_ranking_features``: top-K k-reciprocal re-ranking straight from features, at any gallery
size, streaming distance blocks instead of holding the (q+g)² matrices."""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..knn import parse_knn
from ._blocks import _SymmetricBlocks, _exact_rows, _fill_missing
from ._jaccard_kernels import _final_topk, _gather_lists, _jaccard_sparse
from ._knn import knn_re_ranking
from ._neighbour_kernels import _NO_INDEX, _expansion_sets, _pair_work, _refine, _scan_pair
from ._steps import (RerankError, _blend_constants, _check_max, _check_params, _expand_and_invert, _show, _sizes,
                     _weights)

_MARGIN = 5  # candidates kept per item in pass 1: _MARGIN × max(k1+1, k2)


def _as_feats(x, name):
    """``x`` as a C-contiguous float32 N×D array with finite rows."""
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0:
        raise RerankError(f"{name} must be a non-empty 2-D array (N×D), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise RerankError(f"{name} must hold real numbers, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    for s in range(0, len(a), 8192):
        bad = np.flatnonzero(~np.isfinite(a[s:s + 8192]).all(axis=1))
        if bad.size:
            raise RerankError(f"{name} row {s + int(bad[0])} is not finite")
    return a


def _candidate_lists(blocks, n, list_len, bar):
    """Pass 1: the ``list_len`` nearest items of every item by squared distance (every block pair
    computed once), and the largest squared distance from each item (its normaliser)."""
    ones = np.ones(n, np.float32)
    top_d2 = np.full((n, list_len), np.inf, np.float32)
    top_idx = np.full((n, list_len), _NO_INDEX, np.int32)
    col_max = np.zeros(n, np.float32)
    for bi in range(len(blocks)):
        for bj in range(bi, len(blocks)):
            d = blocks.get(bi, bj)
            _scan_pair(d, blocks.offsets[bi], blocks.offsets[bj], _pair_work(*d.shape, bi == bj), ones,
                       top_d2, top_idx, col_max)
            bar.update(1)
    return top_d2, top_idx, col_max


def _expansion_distances(blocks, q, sizes, bar):
    """The neighbour table (n × ``sizes.table``), the normalisers, and every item's k-reciprocal
    expansion set (CSR) with its normalised squared distances B, exact whatever the lists missed."""
    n = int(blocks.offsets[-1])
    list_len = min(n, _MARGIN * sizes.table)
    top_d2, top_idx, col_max = _candidate_lists(blocks, n, list_len, bar)
    _check_max(col_max, q, "re_ranking_features")
    top_b, ambiguous = _refine(top_d2, top_idx, col_max, sizes.table, list_len == n)
    unsure = np.flatnonzero(ambiguous)
    if unsure.size:
        top_idx[unsure], top_b[unsure], top_d2[unsure] = _exact_rows(blocks, unsure, col_max, list_len)

    neighbours = np.ascontiguousarray(top_idx[:, :sizes.table])
    indptr, indices = _expansion_sets(neighbours, sizes.k1_forward, sizes.half_forward)
    b_values = np.empty(indices.shape[0], np.float32)
    missing = np.empty(indices.shape[0], np.bool_)
    _gather_lists(indptr, indices, top_idx, top_b, top_d2, col_max, b_values, missing)
    _fill_missing(blocks, indptr, indices, missing, col_max, b_values)
    return neighbours, col_max, indptr, indices, b_values


def _rank_queries(blocks, q, col_max, overlaps, lambda_value, depth, bar):
    """Pass 2: stream query×gallery blocks into each query's ``depth`` best final distances."""
    best_v = np.full((q, depth), np.inf, np.float32)
    best_i = np.full((q, depth), _NO_INDEX, np.int32)
    optr, oidx, ojac = overlaps
    cursor = optr[:-1].copy()
    jaccard_weight, distance_weight = _blend_constants(lambda_value)
    for bi in range(blocks.n_query_blocks):
        for bj in range(blocks.n_query_blocks, len(blocks)):
            _final_topk(blocks.get(bi, bj), blocks.offsets[bi], blocks.offsets[bj] - q, col_max, optr, oidx, ojac,
                        cursor, jaccard_weight, distance_weight, best_v, best_i)
            bar.update(1)
    return best_i.astype(np.int64), best_v


def _camera_ids(query_cams, gallery_cams, q, g, penalty):
    """Stacked int64 camera ids (queries then gallery) when a positive penalty is asked, else None."""
    if isinstance(penalty, bool) or not np.isfinite(float(penalty)) or float(penalty) < 0:
        raise RerankError(f"camera_penalty must be a finite number >= 0, got {penalty!r}")
    if not float(penalty):
        return None
    if query_cams is None or gallery_cams is None:
        raise RerankError("camera_penalty needs query_cams and gallery_cams")
    qc, gc = np.asarray(query_cams), np.asarray(gallery_cams)
    if qc.shape != (q,) or gc.shape != (g,) or not np.issubdtype(qc.dtype, np.integer) \
            or not np.issubdtype(gc.dtype, np.integer):
        raise RerankError(f"query_cams / gallery_cams must be integer vectors of length {q} / {g}, "
                          f"got {qc.dtype} {qc.shape} / {gc.dtype} {gc.shape}")
    return np.concatenate([qc, gc]).astype(np.int64)


def re_ranking_features(query_feats, gallery_feats, k1=20, k2=6, lambda_value=0.3, topk=100,
                        metric="euclidean", weight_dtype=np.float32, block_size=2048, progress=None,
                        query_cams=None, gallery_cams=None, camera_penalty=0.0, knn=None):
    """Top-``topk`` k-reciprocal re-ranking straight from features, at any gallery size.

    Equivalent to ``re_ranking(D_qg, D_qq, D_gg, ...)`` on ``pairwise_distance(..., metric)``
    matrices made exactly symmetric (upper triangle mirrored), followed by a stable sort of each
    query row, but memory is O((q+g)·k1 + block_size²): each distance block pair is computed once
    for the neighbour lists and once more for query×gallery to rank. Returns
    ``(indices int64 q×K, distances float32 q×K)``, K = min(topk, g), nearest first, ties to the
    lower gallery index. ``block_size`` trades memory for GEMM efficiency.

    Camera-aware: with ``camera_penalty`` > 0 and camera ids (``-1`` unknown), every same-camera
    pair of different images (query×gallery, query×query, gallery×gallery) gets the penalty added
    before anything else, exactly as the dense path after ``same_camera_penalty``, so neighbourhoods
    are built across cameras. ``knn`` (a ``--knn`` spec, see :mod:`post_processing.knn`) other than
    ``exact``/None finds the neighbour lists with that backend instead (see ``_knn``): no longer
    bit-identical to the dense path, and on a CPU slower than the exact path (README, Performance);
    meant for a GPU faiss build or lists too large for the exact search.
    """
    wdt = _check_params(k1, k2, lambda_value, weight_dtype)
    query, gallery = _as_feats(query_feats, "query_feats"), _as_feats(gallery_feats, "gallery_feats")
    if query.shape[1] != gallery.shape[1]:
        raise RerankError(f"query_feats are {query.shape[1]}-d but gallery_feats are {gallery.shape[1]}-d")
    for name, v in (("topk", topk), ("block_size", block_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise RerankError(f"{name} must be an integer >= 1, got {v!r}")
    q, g = len(query), len(gallery)
    n = q + g
    sizes = _sizes(n, k1, k2)
    cams = _camera_ids(query_cams, gallery_cams, q, g, camera_penalty)
    spec = parse_knn(knn)
    if spec.name != "exact":
        return knn_re_ranking(spec, query, gallery, sizes, k1, k2, lambda_value, min(topk, g), metric, wdt, cams,
                              np.float32(camera_penalty))
    blocks = _SymmetricBlocks(query, gallery, metric, block_size, cams, camera_penalty)
    n_blocks, n_query_blocks = len(blocks), blocks.n_query_blocks
    steps = n_blocks * (n_blocks + 1) // 2 + n_query_blocks * (n_blocks - n_query_blocks) + 2
    show = _show(progress, 2.0 * n * n * query.shape[1], 2e12)
    with tqdm(total=steps, desc="re-ranking", disable=not show) as bar:
        neighbours, col_max, indptr, indices, b_values = _expansion_distances(blocks, q, sizes, bar)
        data = _weights(indptr, b_values, wdt)
        encoded = _expand_and_invert(indptr, indices, data, neighbours, sizes.qe_rows, k2, q, n, wdt)
        overlaps = _jaccard_sparse(*encoded, q, g)
        bar.update(2)
        return _rank_queries(blocks, q, col_max, overlaps, lambda_value, min(topk, g), bar)
