"""Numba kernels, part 1: every item's nearest neighbours and its k-reciprocal expansion set.

Items are the q queries then the g gallery images (``n = q + g``). A neighbour list holds an
item's nearest items, sorted by (value, index), where the value of candidate ``j`` for item ``i``
is ``float32(d(i, j)²) / m[i]`` and ``m[i]`` is the largest squared distance from ``i`` (the
reference's column normaliser). Lists start full of (inf, :data:`_NO_INDEX`).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_NO_INDEX = np.iinfo(np.int32).max  # the index of an empty list slot
_TILE = 512  # items handled together when they are columns of the source matrix


@njit(inline="always")
def _sq(x):
    """``float32(x²)`` computed in the input precision, as ``np.power(d, 2).astype(float32)``."""
    return np.float32(x * x)


@njit(inline="always")
def _insert(vals, idxs, v, j):
    """Insert (v, j) into a full list sorted by (value, index), dropping its last entry."""
    pos = vals.shape[0] - 1
    while pos > 0:
        pv = vals[pos - 1]
        if pv < v or (pv == v and idxs[pos - 1] < j):
            break
        vals[pos] = pv
        idxs[pos] = idxs[pos - 1]
        pos -= 1
    vals[pos] = v
    idxs[pos] = j


@njit(inline="always")
def _reject_above(worst, mi):
    """A squared distance above this bound cannot enter a list whose worst value is ``worst``:
    ``float32(d2 / mi) > worst`` is guaranteed with a 2⁻²⁰ relative margin, so the hot loops
    compare squared distances and divide only for the rare candidates."""
    return np.float64(worst) * np.float64(mi) * (1.0 + 2.0 ** -20)


@njit(inline="always")
def _offer(topv, topi, item, v2, mi, jj):
    """Exact test of candidate ``jj`` (squared distance ``v2``) against ``item``'s list."""
    last = topv.shape[1] - 1
    v = v2 / mi
    if v < topv[item, last] or (v == topv[item, last] and jj < topi[item, last]):
        _insert(topv[item], topi[item], v, jj)
    return _reject_above(topv[item, last], mi)


@njit(inline="always")
def _scan_row(M, i, col_off, item, m, topv, topi, rmax):
    """Offer row ``i`` of ``M`` to the list of ``item``: candidate ``col_off + j`` has value
    ``float32(M[i, j]²) / m[item]``; ``rmax[item]`` tracks the largest squared value seen.

    Lists are sorted by (value, index) and start full of (inf, max index).
    """
    mi = m[item]
    mx = rmax[item]
    bound = _reject_above(topv[item, topv.shape[1] - 1], mi)
    for j in range(M.shape[1]):
        v2 = _sq(M[i, j])
        if v2 > mx:
            mx = v2
        if v2 <= bound:
            bound = _offer(topv, topi, item, v2, mi, col_off + j)
    rmax[item] = mx


@njit(inline="always")
def _scan_tile(M, a, w, row_off, dst_off, m, topv, topi, rmax):
    """:func:`_scan_row` for columns ``a:a+w`` of ``M`` (item ``dst_off + c`` for column c),
    reading each row of ``M`` as one contiguous run."""
    mi = np.empty(w, np.float32)
    mx = np.empty(w, np.float32)
    bound = np.empty(w, np.float64)
    for c in range(w):
        item = dst_off + a + c
        mi[c] = m[item]
        mx[c] = rmax[item]
        bound[c] = _reject_above(topv[item, topv.shape[1] - 1], mi[c])
    for r in range(M.shape[0]):
        for c in range(w):
            v2 = _sq(M[r, a + c])
            if v2 > mx[c]:
                mx[c] = v2
            if v2 <= bound[c]:
                bound[c] = _offer(topv, topi, dst_off + a + c, v2, mi[c], row_off + r)
    for c in range(w):
        rmax[dst_off + a + c] = mx[c]


@njit(cache=True, parallel=True)
def _scan_rows(M, r0, r1, col_off, dst_off, m, topv, topi, rmax):
    """Rows ``r0:r1`` of ``M`` are the candidates of items ``dst_off + r``."""
    for i in prange(r0, r1):
        _scan_row(M, i, col_off, dst_off + i, m, topv, topi, rmax)


@njit(cache=True, parallel=True)
def _scan_cols(M, c0, c1, row_off, dst_off, m, topv, topi, rmax):
    """Columns ``c0:c1`` of ``M`` are the candidates of items ``dst_off + c``."""
    ntiles = (c1 - c0 + _TILE - 1) // _TILE
    for t in prange(ntiles):
        a = c0 + t * _TILE
        _scan_tile(M, a, min(_TILE, c1 - a), row_off, dst_off, m, topv, topi, rmax)


@njit(cache=True, parallel=True)
def _scan_pair(D, row_off, col_off, work, m, topv, topi, rmax):
    """One block of a symmetric matrix in one parallel launch: its rows feed the row items and
    its columns the column items. ``work`` (see :func:`_pair_work`) lists rows (>= 0) and column
    tiles (-1 - tile) interleaved so that any contiguous share of it is a balanced load."""
    nc = D.shape[1]
    for t in prange(work.shape[0]):
        w = work[t]
        if w >= 0:
            _scan_row(D, w, col_off, row_off + w, m, topv, topi, rmax)
        else:
            a = (-1 - w) * _TILE
            _scan_tile(D, a, min(_TILE, nc - a), row_off, col_off, m, topv, topi, rmax)


def _pair_work(n_rows, n_cols, diagonal):
    """Work list for :func:`_scan_pair`: rows and column tiles merged by relative position."""
    rows = np.arange(n_rows)
    if diagonal:
        return rows
    tiles = np.arange(-(-n_cols // _TILE))
    pos = np.concatenate([(rows + 0.5) / n_rows, (tiles + 0.5) / len(tiles)])
    return np.concatenate([rows, -1 - tiles])[np.argsort(pos, kind="stable")]


@njit(cache=True)
def _mirror_upper(D):
    """Make a square block symmetric from its upper triangle (diagonal blocks of a symmetric matrix)."""
    n = D.shape[0]
    for i in range(1, n):
        for j in range(i):
            D[i, j] = D[j, i]


@njit(cache=True)
def _refine(topd2, topi, m, need, complete):
    """Turn lists ranked by squared distance into lists ranked by ``d²/m`` (ties: lower index).

    Division can merge distinct squared distances into one value, so an item whose ``need``-th
    value equals its last kept value might miss a tied lower-index candidate that was not kept;
    such items are flagged (only possible when ``complete`` is False, i.e. not every item is kept).
    """
    n, L = topd2.shape
    topb = np.empty((n, L), np.float32)
    ambiguous = np.zeros(n, np.bool_)
    for i in range(n):
        mi = m[i]
        for a in range(L):
            v = topd2[i, a] / mi
            d2 = topd2[i, a]
            j = topi[i, a]
            pos = a
            while pos > 0 and (topb[i, pos - 1] > v or (topb[i, pos - 1] == v and topi[i, pos - 1] > j)):
                topb[i, pos] = topb[i, pos - 1]
                topd2[i, pos] = topd2[i, pos - 1]
                topi[i, pos] = topi[i, pos - 1]
                pos -= 1
            topb[i, pos] = v
            topd2[i, pos] = d2
            topi[i, pos] = j
        if not complete and topb[i, L - 1] == topb[i, need - 1]:
            ambiguous[i] = True
    return topb, ambiguous


@njit(cache=True)
def _reciprocal(neighbours, k):
    """k-reciprocal neighbours of every item: the j among its first ``k`` neighbours that have it
    among their own first ``k`` (in forward order, padded), and how many there are."""
    n = neighbours.shape[0]
    out = np.empty((n, k), np.int32)
    counts = np.zeros(n, np.int64)
    for i in range(n):
        nk = 0
        for a in range(k):
            f = neighbours[i, a]
            for b in range(k):
                if neighbours[f, b] == i:
                    out[i, nk] = f
                    nk += 1
                    break
        counts[i] = nk
    return out, counts


@njit(inline="always")
def _expansion_row(i, krec, kcnt, hrec, hcnt, mark, buf):
    """Expansion set of item ``i`` (unsorted, unique) in ``buf``; returns its size.

    Its k1-reciprocal set, plus the round(k1/2)-reciprocal set of each member that shares more
    than 2/3 of its own elements with it. ``mark`` (one slot per item, zeroed once per thread)
    records membership: value 2i+1 = in the k1-reciprocal set, 2i+2 = added by expansion.
    """
    in_krec = 2 * i + 1
    added = 2 * i + 2
    cnt = 0
    for a in range(kcnt[i]):
        mark[krec[i, a]] = in_krec
        buf[cnt] = krec[i, a]
        cnt += 1
    for a in range(kcnt[i]):
        c = krec[i, a]
        nc = hcnt[c]
        common = 0
        for b in range(nc):
            if mark[hrec[c, b]] == in_krec:
                common += 1
        if common > (2.0 / 3.0) * nc:
            for b in range(nc):
                x = hrec[c, b]
                if mark[x] != in_krec and mark[x] != added:
                    mark[x] = added
                    buf[cnt] = x
                    cnt += 1
    return cnt


@njit(cache=True)
def _expansion_sets(neighbours, k1_forward, half_forward):
    """CSR (indptr, ascending indices) of every item's k-reciprocal expansion set."""
    n = neighbours.shape[0]
    krec, kcnt = _reciprocal(neighbours, k1_forward)
    hrec, hcnt = _reciprocal(neighbours, half_forward)
    cap = k1_forward + k1_forward * half_forward
    mark = np.zeros(n, np.int64)
    buf = np.empty(cap, np.int32)
    sizes = np.zeros(n + 1, np.int64)
    for i in range(n):
        sizes[i + 1] = _expansion_row(i, krec, kcnt, hrec, hcnt, mark, buf)
    indptr = np.cumsum(sizes)
    indices = np.empty(indptr[n], np.int32)
    mark[:] = 0
    for i in range(n):
        u = _expansion_row(i, krec, kcnt, hrec, hcnt, mark, buf)
        indices[indptr[i]:indptr[i] + u] = np.sort(buf[:u])
    return indptr, indices

