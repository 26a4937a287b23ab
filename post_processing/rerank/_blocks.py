"""The symmetric (q+g)² distance matrix of :func:`re_ranking_features`, one block at a time, and
the exact recomputations that fill what the kept neighbour lists miss."""
from __future__ import annotations

import numpy as np

from post_processing.distance import pairwise_distance, topk_smallest

from ._neighbour_kernels import _mirror_upper


def _even_blocks(n, size):
    """Near-equal contiguous blocks ``(start, end)`` of at most ``size`` rows (no tiny trailing block)."""
    count = -(-n // size)
    edges = [n * b // count for b in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


class _SymmetricBlocks:
    """The symmetric (q+g)² distance matrix, one block at a time, never stored.

    Block (I, J), I <= J, is ``pairwise_distance(X_I, X_J)`` (upper triangle mirrored when I == J);
    (J, I) is its transpose. Recomputing a block repeats the very same call, so it is bit-identical.
    With ``cams`` (camera id per stacked item, -1 unknown) and a ``penalty``, same-camera pairs of
    different items get ``penalty`` added, as :func:`post_processing.camera.same_camera_penalty` does.
    """

    def __init__(self, query, gallery, metric, block_size, cams=None, penalty=0.0):
        self.parts = [query[s:e] for s, e in _even_blocks(len(query), block_size)] + \
                     [gallery[s:e] for s, e in _even_blocks(len(gallery), block_size)]
        sizes = [len(p) for p in self.parts]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n_query_blocks = len(_even_blocks(len(query), block_size))
        self.metric = metric
        self.cams = cams if penalty else None
        self.penalty = np.float32(penalty)

    def __len__(self):
        return len(self.parts)

    def block_of(self, items):
        """The block holding each item (an index into the stacked queries then gallery)."""
        return np.searchsorted(self.offsets, items, side="right") - 1

    def get(self, bi, bj):
        """Distance block (bi, bj)."""
        if bi > bj:
            return self.get(bj, bi).T
        d = pairwise_distance(self.parts[bi], self.parts[bj], self.metric)
        if bi == bj:
            _mirror_upper(d)
        if self.cams is not None:
            a = self.cams[self.offsets[bi]:self.offsets[bi + 1]]
            b = self.cams[self.offsets[bj]:self.offsets[bj + 1]]
            same = (a[:, None] == b[None, :]) & (a[:, None] >= 0) & (b[None, :] >= 0)
            if bi == bj:
                np.fill_diagonal(same, False)
            d[same] += self.penalty
        return d


def _exact_rows(blocks, items, col_max, list_len):
    """Exact (B, index)-ranked lists for a few items, from their full recomputed rows."""
    n = blocks.offsets[-1]
    out_i = np.empty((len(items), list_len), np.int32)
    out_b = np.empty((len(items), list_len), np.float32)
    out_d2 = np.empty((len(items), list_len), np.float32)
    owner = blocks.block_of(items)
    for bi in np.unique(owner):
        sel = np.flatnonzero(owner == bi)
        local = items[sel] - blocks.offsets[bi]
        d2 = np.empty((len(sel), n), np.float32)
        for bj in range(len(blocks)):
            d = blocks.get(bi, bj)[local]
            d2[:, blocks.offsets[bj]:blocks.offsets[bj + 1]] = d * d
        for s in range(0, len(sel), 256):
            rows = sel[s:s + 256]
            b = d2[s:s + 256] / col_max[items[rows]][:, None]
            order = topk_smallest(b, list_len)
            out_i[rows] = order
            out_b[rows] = np.take_along_axis(b, order, axis=1)
            out_d2[rows] = np.take_along_axis(d2[s:s + 256], order, axis=1)
    return out_i, out_b, out_d2


def _fill_missing(blocks, indptr, indices, missing, col_max, b_values):
    """B values for expansion pairs found in neither item's kept list: recompute their blocks."""
    miss = np.flatnonzero(missing)
    if not miss.size:
        return
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))[miss]
    cols = indices[miss].astype(np.int64)
    br, bc = blocks.block_of(rows), blocks.block_of(cols)
    lo, hi = np.minimum(br, bc), np.maximum(br, bc)
    # D is symmetric: read each pair as D[member of block lo, member of block hi].
    a = np.where(br <= bc, rows, cols) - blocks.offsets[lo]
    b = np.where(br <= bc, cols, rows) - blocks.offsets[hi]
    key = lo * len(blocks) + hi
    for k in np.unique(key):
        sel = np.flatnonzero(key == k)
        d = blocks.get(int(lo[sel[0]]), int(hi[sel[0]]))[a[sel], b[sel]]
        b_values[miss[sel]] = (d * d) / col_max[rows[sel]]
