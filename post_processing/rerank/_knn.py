"""Top-K re-ranking with the neighbour lists from a :mod:`post_processing.knn` backend (``--knn``).

Instead of streaming the whole (q+g)² distance matrix, each item's ``_MARGIN``·``max(k1+1, k2)``
nearest items come from two indexes of the backend (one over the gallery, one over the queries),
its normaliser (largest squared distance) from the backend's farthest search, and the final
ranking of a query only looks at the gallery items that share a k-reciprocal weight with it plus
its ``topk`` plain nearest gallery items: any other item has Jaccard distance 1 and a larger plain
distance than all of those, so it cannot enter the top-``topk``. Everything after the lists (weights,
query expansion, Jaccard) is the exact path's kernels. With a camera penalty, twice as many
candidates are searched and re-scored with the penalty (a cross-camera item beyond them is missed, so
camera-aware lists are approximate even with the exact flat ``faiss`` backend), and the normaliser
adds the farthest same-camera distance plus the penalty (see :func:`_normalisers`).
"""
from __future__ import annotations

import numpy as np

from ..knn import build_index, farthest_sq
from ..knn.base import sq_to_metric
from ._jaccard_kernels import _gather_lists, _jaccard_sparse
from ._neighbour_kernels import _NO_INDEX, _expansion_sets, _refine
from ._steps import _blend_constants, _check_max, _expand_and_invert, _weights

_MARGIN = 5  # neighbours kept per item: _MARGIN × max(k1+1, k2), as the exact path's pass 1
_BATCH = 8192  # items searched per call
_PAIRS = 16384  # pair distances computed per step


def _unit(x):
    return x / np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]


class _Items:
    """Queries then gallery as one id space, with exact pair distances and the camera penalty."""

    def __init__(self, query, gallery, metric, cams, penalty):
        self.query, self.gallery, self.metric = query, gallery, metric
        self.q = len(query)
        self.cams, self.penalty = cams, penalty

    def rows(self, ids):
        out = np.empty((len(ids), self.query.shape[1]), np.float32)
        inq = ids < self.q
        out[inq] = self.query[ids[inq]]
        out[~inq] = self.gallery[ids[~inq] - self.q]
        return out

    def penalise(self, d, rows, cols):
        """``d`` (metric distances of pairs rows × cols, broadcastable) plus the same-camera penalty."""
        if self.cams is None:
            return d
        ok = cols != _NO_INDEX
        cc = np.where(ok, self.cams[np.where(ok, cols, 0)], -1)
        rc = self.cams[rows]
        return d + self.penalty * ((rc == cc) & (rc >= 0) & (cc >= 0) & (rows != cols))

    def pair_distances(self, rows, cols):
        """Penalised metric distances of the pairs ``(rows[t], cols[t])``."""
        out = np.empty(len(rows), np.float32)
        for s in range(0, len(rows), _PAIRS):
            a, b = self.rows(rows[s:s + _PAIRS]), self.rows(cols[s:s + _PAIRS])
            d2 = np.einsum("ij,ij->i", a, a) + np.einsum("ij,ij->i", b, b) - 2 * np.einsum("ij,ij->i", a, b)
            out[s:s + _PAIRS] = sq_to_metric(d2.astype(np.float32), self.metric)
        return self.penalise(out, rows, cols)


def _search_lists(spec, items, list_len, depth):
    """Each item's ``list_len`` nearest items by penalised distance (squared, ascending, ties to the
    lower id), and each query's ``depth`` nearest gallery items."""
    q, g = items.q, len(items.gallery)
    n = q + g
    widen = 2 if items.cams is not None else 1
    gallery_index = build_index(spec, items.gallery, "sqeuclidean")
    query_index = build_index(spec, items.query, "sqeuclidean")
    top_d2 = np.empty((n, list_len), np.float32)
    top_idx = np.empty((n, list_len), np.int32)
    near = np.empty((q, depth), np.int64)
    for s in range(0, n, _BATCH):
        ids = np.arange(s, min(n, s + _BATCH))
        x = items.rows(ids)
        gi, gd = gallery_index.search(x, min(g, widen * max(list_len, depth if s < q else 0)))
        qi, qd = query_index.search(x, min(q, widen * list_len))
        cand = np.concatenate([np.where(qi >= 0, qi, _NO_INDEX), np.where(gi >= 0, gi + q, _NO_INDEX)], axis=1)
        d = items.penalise(sq_to_metric(np.concatenate([qd, gd], axis=1), items.metric), ids[:, None], cand)
        d2 = (d * d).astype(np.float32)
        order = np.lexsort((cand, d2), axis=-1)[:, :list_len]
        top_d2[s:s + len(ids)] = np.take_along_axis(d2, order, 1)
        top_idx[s:s + len(ids)] = np.take_along_axis(cand, order, 1)
        if s < q:
            m = min(len(ids), q - s)
            gp = items.penalise(sq_to_metric(gd[:m].copy(), items.metric), ids[:m, None],
                                np.where(gi[:m] >= 0, gi[:m] + q, _NO_INDEX))
            o = np.lexsort((gi[:m], gp), axis=-1)[:, :depth]
            near[s:s + m] = np.take_along_axis(gi[:m], o, 1)
    return top_d2, top_idx, near


def _normalisers(spec, items, top_d2):
    """Each item's largest squared (penalised) distance, never below what its list holds.

    With a camera penalty: ``max(farthest², (farthest within its camera + penalty)²)``, exact for an
    exact backend (a same-camera item is at most its camera's farthest plus the penalty away).
    """
    stacked = (items.query, items.gallery)
    far = sq_to_metric(np.maximum(farthest_sq(spec, items.query, stacked), farthest_sq(spec, items.gallery, stacked)),
                        items.metric)
    col_max = (far * far).astype(np.float32)
    if items.cams is not None:
        for cam in np.unique(items.cams[items.cams >= 0]):
            members = np.flatnonzero(items.cams == cam)
            if len(members) > 1:
                x = items.rows(members)
                d = sq_to_metric(farthest_sq(spec, x, x), items.metric) + items.penalty
                col_max[members] = np.maximum(col_max[members], (d * d).astype(np.float32))
    seen = np.where(np.isfinite(top_d2), top_d2, 0).max(axis=1)
    return np.maximum(col_max, seen)


def _final_topk(items, overlaps, near, col_max, lambda_value, depth):
    """Each query's ``depth`` best final distances among its overlap items and plain nearest items."""
    q = items.q
    optr, oidx, ojac = overlaps
    counts = np.diff(optr)
    ov_q = np.repeat(np.arange(q), counts)
    nr_q = np.repeat(np.arange(q), near.shape[1])
    nr_g = near.ravel()
    keep = nr_g >= 0
    qs = np.concatenate([ov_q, nr_q[keep]])
    gs = np.concatenate([oidx.astype(np.int64), nr_g[keep]])
    jac = np.concatenate([ojac, np.ones(int(keep.sum()), np.float32)])
    key, first = np.unique(qs * (len(items.gallery) + 1) + gs, return_index=True)  # overlap entries come first
    qs, gs, jac = qs[first], gs[first], jac[first]
    d = items.pair_distances(qs, gs + q)
    c1, c2 = _blend_constants(lambda_value)
    final = jac * c1 + ((d * d).astype(np.float32) / col_max[qs]) * c2
    order = np.lexsort((gs, final, qs))
    qs, gs, final = qs[order], gs[order], final[order]
    starts = np.searchsorted(qs, np.arange(q))
    rank = np.arange(len(qs)) - starts[qs]
    sel = rank < depth
    idx = np.full((q, depth), -1, np.int64)
    dist = np.full((q, depth), np.inf, np.float32)
    idx[qs[sel], rank[sel]] = gs[sel]
    dist[qs[sel], rank[sel]] = final[sel]
    return idx, dist


def knn_re_ranking(spec, query, gallery, sizes, k1, k2, lambda_value, depth, metric, weight_dtype, cams, penalty):
    """:func:`~post_processing.rerank.re_ranking_features` with ``spec``'s neighbour lists."""
    if metric == "cosine":
        query, gallery = _unit(query), _unit(gallery)
    items = _Items(query, gallery, metric, cams, penalty)
    q, n = len(query), len(query) + len(gallery)
    list_len = min(n, _MARGIN * sizes.table)
    top_d2, top_idx, near = _search_lists(spec, items, list_len, depth)
    if (top_idx[:, :sizes.table] == _NO_INDEX).any():
        top_idx, top_d2 = _complete(items, top_idx, top_d2, sizes.table)
    col_max = _normalisers(spec, items, top_d2)
    _check_max(col_max, q, "re_ranking_features")
    top_b, _ = _refine(top_d2, top_idx, col_max, sizes.table, True)
    neighbours = np.ascontiguousarray(top_idx[:, :sizes.table])
    indptr, indices = _expansion_sets(neighbours, sizes.k1_forward, sizes.half_forward)
    b_values = np.empty(indices.shape[0], np.float32)
    missing = np.empty(indices.shape[0], np.bool_)
    _gather_lists(indptr, indices, top_idx, top_b, top_d2, col_max, b_values, missing)
    miss = np.flatnonzero(missing)
    if miss.size:
        rows = np.repeat(np.arange(n), np.diff(indptr))[miss]
        d = items.pair_distances(rows, indices[miss].astype(np.int64))
        b_values[miss] = (d * d).astype(np.float32) / col_max[rows]
    data = _weights(indptr, b_values, weight_dtype)
    encoded = _expand_and_invert(indptr, indices, data, neighbours, sizes.qe_rows, k2, q, n, weight_dtype)
    overlaps = _jaccard_sparse(*encoded, q, len(gallery))
    return _final_topk(items, overlaps, near, col_max, lambda_value, depth)


def _complete(items, top_idx, top_d2, need):
    """Rows an approximate backend left with fewer than ``need`` hits, completed by exact search."""
    rows = np.flatnonzero((top_idx[:, :need] == _NO_INDEX).any(axis=1))
    n, width = top_idx.shape
    everyone = np.arange(n)
    for r in rows:
        d = items.pair_distances(np.full(n, r), everyone)
        d2 = (d * d).astype(np.float32)
        order = np.lexsort((everyone, d2))[:width]
        top_idx[r], top_d2[r] = order, d2[order]
    return top_idx, top_d2
