"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), exact and numba-compiled, at any scale.

Two entry points share every kernel:

* :func:`re_ranking` takes the three distance matrices of the widely used implementation
  (fast-reid, torchreid, the AICity repos) and returns the same q×g matrix, but never builds the
  (q+g)² float32 matrices: only the first ``max(k1+1, k2)`` neighbours of each item are kept, the
  k-reciprocal weights ``V`` are sparse rows and the Jaccard term is computed through an inverted
  index over the gallery only.
* :func:`re_ranking_features` starts from features, computes distances block pair by block pair
  (each pair of blocks once, the matrix being symmetric) and returns only the top-``topk`` gallery
  items per query; a gallery item that shares no weight with a query has Jaccard distance 1, so
  its final distance is ``(1-λ) + λ·d`` and never needs the Jaccard machinery.

Semantics (what "the widely used implementation" does), reproduced operation for operation in
float32 so results agree bit for bit with a numpy transcription: distances are squared, each row
``i`` of the stacked ``[[q_q, q_g], [q_gᵀ, g_g]]`` matrix becomes ``column_i / max(column_i)``,
neighbours are ranked by that value, weights are ``exp(-d)`` over the k-reciprocal set expanded
with the 2/3 rule over ``round(k1/2)+1`` neighbours, normalised with numpy's pairwise sum,
averaged over the first ``k2`` neighbours, and the final distance is
``jaccard·(1-λ) + d·λ``. One deliberate difference: ties in the neighbour ranking go to the lower
index (a stable sort), where the reference's quicksort argsort leaves their order unspecified.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload
from tqdm import tqdm

from post_processing.distance import pairwise_distance, topk_smallest

__all__ = ["re_ranking", "re_ranking_features"]

_NO_INDEX = np.iinfo(np.int32).max
_TILE = 512            # items handled together when they are columns of the source matrix
_MARGIN = 5            # re_ranking_features keeps _MARGIN × max(k1+1, k2) candidates per item
_WEIGHT_DTYPES = (np.float32, np.float16)


# --------------------------------------------------------------------------- numba helpers

def _val(a, i):
    """Element ``i`` of a weight array as float32 (float16 weights travel as their uint16 bits)."""
    return np.float32(a[i])


@njit(cache=True)
def _half_to_float(h):
    """Decode IEEE half-precision bits (numba has no float16 type on the CPU)."""
    h = np.int64(h)
    e = (h >> 10) & 31
    mant = h & 1023
    if e == 0:
        v = math.ldexp(float(mant), -24)
    elif e == 31:
        v = math.inf if mant == 0 else math.nan
    else:
        v = math.ldexp(float(mant + 1024), e - 25)
    if h & 0x8000:
        v = -v
    return np.float32(v)


@overload(_val)
def _val_impl(a, i):
    if isinstance(a, types.Array) and a.dtype == types.uint16:
        return lambda a, i: _half_to_float(a[i])
    return lambda a, i: np.float32(a[i])


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
def _reciprocal(R, k):
    """k-reciprocal neighbours of every item: the j among its first ``k`` neighbours that have it
    among their own first ``k`` (in forward order, padded), and how many there are."""
    n = R.shape[0]
    out = np.empty((n, k), np.int32)
    counts = np.zeros(n, np.int64)
    for i in range(n):
        nk = 0
        for a in range(k):
            f = R[i, a]
            for b in range(k):
                if R[f, b] == i:
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
def _expansion_sets(R, K1, H1):
    """CSR (indptr, ascending indices) of every item's k-reciprocal expansion set."""
    n = R.shape[0]
    krec, kcnt = _reciprocal(R, K1)
    hrec, hcnt = _reciprocal(R, H1)
    cap = K1 + K1 * H1
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


@njit(cache=True)
def _gather_dense(indptr, indices, q_q, q_g, g_g, m, q, out):
    """``out[p] = B[i, x]`` for every (i, x) of the CSR, read from the three input matrices."""
    n = indptr.shape[0] - 1
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            x = indices[p]
            if x < q:
                d = q_q[x, i] if i < q else q_g[x, i - q]
            else:
                d = q_g[i, x - q] if i < q else g_g[x - q, i - q]
            out[p] = _sq(d) / m[i]


@njit(cache=True)
def _gather_lists(indptr, indices, topi, topb, topd2, m, out, missing):
    """``out[p] = B[i, x]`` from item i's kept list, else from x's (the matrix is symmetric).

    Pairs found in neither list are flagged in ``missing`` for recomputation.
    """
    n = indptr.shape[0] - 1
    L = topi.shape[1]
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            x = indices[p]
            found = False
            for a in range(L):
                if topi[i, a] == x:
                    out[p] = topb[i, a]
                    found = True
                    break
            if not found:
                for a in range(L):
                    if topi[x, a] == i:
                        out[p] = topd2[x, a] / m[i]
                        found = True
                        break
            missing[p] = not found


@njit(cache=True)
def _pairwise_sum(x, lo, n):
    """numpy's float32 pairwise summation of ``x[lo:lo+n]`` (same order, same rounding as np.sum)."""
    if n < 8:
        s = np.float32(0.0)
        for t in range(lo, lo + n):
            s += x[t]
        return s
    if n <= 128:
        r0, r1, r2, r3 = x[lo], x[lo + 1], x[lo + 2], x[lo + 3]
        r4, r5, r6, r7 = x[lo + 4], x[lo + 5], x[lo + 6], x[lo + 7]
        t = 8
        stop = n - n % 8
        while t < stop:
            b = lo + t
            r0 += x[b]
            r1 += x[b + 1]
            r2 += x[b + 2]
            r3 += x[b + 3]
            r4 += x[b + 4]
            r5 += x[b + 5]
            r6 += x[b + 6]
            r7 += x[b + 7]
            t += 8
        s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while t < n:
            s += x[lo + t]
            t += 1
        return s
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(x, lo, n2) + _pairwise_sum(x, lo + n2, n - n2)


@njit(cache=True)
def _normalise_rows(indptr, w):
    """Divide each CSR row of weights by its numpy-order sum."""
    n = indptr.shape[0] - 1
    out = np.empty_like(w)
    for i in range(n):
        lo = indptr[i]
        s = _pairwise_sum(w, lo, indptr[i + 1] - lo)
        for p in range(lo, indptr[i + 1]):
            out[p] = w[p] / s
    return out


@njit(cache=True)
def _query_expand(indptr, indices, data, R, kq):
    """Sparse ``V_qe[i] = mean(V[R[i, :kq]])`` summed in neighbour order, as numpy's ``mean(axis=0)``.

    Returns (indptr, indices, float32 values) with each row's columns ascending.
    """
    n = indptr.shape[0] - 1
    bound = 0
    for i in range(n):
        for r in range(kq):
            bound += indptr[R[i, r] + 1] - indptr[R[i, r]]
    out_ptr = np.zeros(n + 1, np.int64)
    out_idx = np.empty(bound, np.int32)
    out_val = np.empty(bound, np.float32)
    kf = np.float32(kq)
    acc = np.zeros(n, np.float32)
    mark = np.zeros(n, np.int64)
    total = 0
    for i in range(n):
        start = total
        for r in range(kq):
            rr = R[i, r]
            for p in range(indptr[rr], indptr[rr + 1]):
                c = indices[p]
                if mark[c] != i + 1:
                    mark[c] = i + 1
                    acc[c] = 0.0
                    out_idx[total] = c
                    total += 1
                acc[c] += _val(data, p)
        out_idx[start:total] = np.sort(out_idx[start:total])
        for t in range(start, total):
            out_val[t] = acc[out_idx[t]] / kf
        out_ptr[i + 1] = total
    return out_ptr, out_idx[:total].copy(), out_val[:total].copy()


@njit(cache=True)
def _invert(indptr, indices, data, row0, ncols):
    """Column-major copy (inverted index) of CSR rows ``row0:``; rows ascend within each column."""
    n = indptr.shape[0] - 1
    colptr = np.zeros(ncols + 1, np.int64)
    for p in range(indptr[row0], indptr[n]):
        colptr[indices[p] + 1] += 1
    colptr = np.cumsum(colptr)
    fill = colptr[:-1].copy()
    rows = np.empty(colptr[ncols], np.int32)
    vals = np.empty(colptr[ncols], data.dtype)
    for i in range(row0, n):
        for p in range(indptr[i], indptr[i + 1]):
            c = indices[p]
            rows[fill[c]] = i
            vals[fill[c]] = data[p]
            fill[c] += 1
    return colptr, rows, vals


@njit(inline="always")
def _overlap(i, qptr, qidx, qval, colptr, rows, vals, row0, acc, mark, touched):
    """Sum of ``min(V[i, c], V[j, c])`` over shared columns, accumulated in ascending ``c``.

    Fills ``acc[j - row0]`` for every item j >= row0 sharing a column with i (listed in
    ``touched``, unordered) and returns how many there are.
    """
    cnt = 0
    for p in range(qptr[i], qptr[i + 1]):
        c = qidx[p]
        vi = _val(qval, p)
        for t in range(colptr[c], colptr[c + 1]):
            j = rows[t] - row0
            vj = _val(vals, t)
            if mark[j] != i + 1:
                mark[j] = i + 1
                acc[j] = 0.0
                touched[cnt] = j
                cnt += 1
            acc[j] += vi if vi < vj else vj
    return cnt


@njit(inline="always")
def _jaccard(t):
    return np.float32(1.0) - t / (np.float32(2.0) - t)


@njit(cache=True, parallel=True)
def _final_dense(qptr, qidx, qval, colptr, rows, vals, q_g, m, c1, c2, out):
    """Final q×g matrix: ``jaccard·c1 + B·c2``, jaccard being exactly 1 for items sharing nothing."""
    q, g = q_g.shape
    nchunks = min(q, 64)
    for ch in prange(nchunks):
        acc = np.zeros(g, np.float32)
        mark = np.zeros(g, np.int64)
        touched = np.empty(g, np.int64)
        for i in range(ch * q // nchunks, (ch + 1) * q // nchunks):
            mi = m[i]
            for j in range(g):
                out[i, j] = c1 + (_sq(q_g[i, j]) / mi) * c2
            cnt = _overlap(i, qptr, qidx, qval, colptr, rows, vals, q, acc, mark, touched)
            for t in range(cnt):
                j = touched[t]
                out[i, j] = _jaccard(acc[j]) * c1 + (_sq(q_g[i, j]) / mi) * c2


@njit(cache=True)
def _jaccard_sparse(qptr, qidx, qval, colptr, rows, vals, q, g):
    """Per query, the gallery items sharing a weight with it (ascending) and their Jaccard distance."""
    sizes = np.zeros(q + 1, np.int64)
    acc = np.zeros(g, np.float32)
    mark = np.zeros(g, np.int64)
    touched = np.empty(g, np.int64)
    for i in range(q):
        sizes[i + 1] = _overlap(i, qptr, qidx, qval, colptr, rows, vals, q, acc, mark, touched)
    optr = np.cumsum(sizes)
    oidx = np.empty(optr[q], np.int32)
    ojac = np.empty(optr[q], np.float32)
    mark[:] = 0
    for i in range(q):
        cnt = _overlap(i, qptr, qidx, qval, colptr, rows, vals, q, acc, mark, touched)
        srt = np.sort(touched[:cnt])
        for t in range(cnt):
            oidx[optr[i] + t] = srt[t]
            ojac[optr[i] + t] = _jaccard(acc[srt[t]])
    return optr, oidx, ojac


@njit(cache=True, parallel=True)
def _final_topk(D, row_off, col_off, m, optr, oidx, ojac, cursor, c1, c2, topv, topi):
    """Stream a query×gallery distance block into each query's top-K of the final distance.

    Gallery blocks must arrive in ascending order: ``cursor`` walks each query's overlap list.
    """
    nr, nc = D.shape
    last = topv.shape[1] - 1
    for i in prange(nr):
        r = row_off + i
        mi = m[r]
        p = cursor[r]
        pend = optr[r + 1]
        wv = topv[r, last]
        wi = topi[r, last]
        for j in range(nc):
            jj = col_off + j
            b = _sq(D[i, j]) / mi
            if p < pend and oidx[p] == jj:
                v = ojac[p] * c1 + b * c2
                p += 1
            else:
                v = c1 + b * c2
            if v < wv or (v == wv and jj < wi):
                _insert(topv[r], topi[r], v, jj)
                wv = topv[r, last]
                wi = topi[r, last]
        cursor[r] = p


# --------------------------------------------------------------------------- shared steps

def _check_params(k1, k2, lambda_value, weight_dtype):
    for name, k in (("k1", k1), ("k2", k2)):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {k!r}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value!r}")
    dt = np.dtype(weight_dtype)
    if dt not in [np.dtype(d) for d in _WEIGHT_DTYPES]:
        raise ValueError(f"weight_dtype must be float32 or float16, got {dt}")
    return dt


def _sizes(n, k1, k2):
    """Columns of the neighbour table, forward list length, candidate list length, QE rows."""
    return min(n, max(k1 + 1, k2)), min(n, k1 + 1), min(n, int(np.around(k1 / 2.0)) + 1), min(n, k2)


def _weights(indptr, b_values, weight_dtype):
    """Normalised Gaussian weights ``exp(-B) / sum`` per CSR row (numpy's exp, numpy's sum order)."""
    w = _normalise_rows(indptr, np.exp(-b_values))
    return w.astype(weight_dtype) if weight_dtype != np.float32 else w


def _kernel_view(data):
    """Weights as the kernels read them: float16 is passed as its uint16 bit pattern."""
    return data.view(np.uint16) if data.dtype == np.float16 else data


def _encode(indptr, indices, data, R, kq, k2, q, n, weight_dtype):
    """Query expansion then the inverted index over the gallery rows."""
    if k2 != 1:
        indptr, indices, data = _query_expand(indptr, indices, _kernel_view(data), R, kq)
        if weight_dtype != np.float32:
            data = data.astype(weight_dtype)
    data = _kernel_view(data)
    colptr, rows, vals = _invert(indptr, indices, data, q, n)
    return indptr, indices, data, colptr, rows, vals


def _blend_constants(lambda_value):
    """float32 ``1-λ`` and ``λ``, as numpy rounds a Python float multiplying a float32 array."""
    return np.float32(1 - float(lambda_value)), np.float32(float(lambda_value))


def _show(progress, work, threshold):
    return bool(progress) if progress is not None else work >= threshold


def _as_dist(x, name):
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D distance matrix, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    dt = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
    return np.ascontiguousarray(a, dtype=dt)


def _abs_max(M, axis, name):
    """``max(float32(M²), axis)``, i.e. the square of the largest magnitude (squaring is monotone)."""
    big = np.maximum(M.max(axis=axis), -M.min(axis=axis))
    if not np.isfinite(big).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return (big * big).astype(np.float32)


def _check_max(m, q, where):
    zero = np.flatnonzero(~(m > 0))
    if zero.size:
        i = int(zero[0])
        item = f"query {i}" if i < q else f"gallery item {i - q}"
        raise ValueError(f"{where}: every distance from {item} is zero; re-ranking divides by the "
                         "largest one (are all features identical?)")


# --------------------------------------------------------------------------- entry points

def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3,
               weight_dtype=np.float32, progress=None):
    """k-reciprocal re-ranked q×g distances from plain (e.g. euclidean) distance matrices.

    Same arguments and float32 result as the widely used ``re_ranking`` (see the module
    docstring; ties between equal distances are ranked lower index first). Memory stays near the
    size of the inputs: no (q+g)² matrix is built. ``weight_dtype=np.float16`` halves the sparse
    weights' memory at the cost of ~1e-3 precision. ``progress`` (None: only for large inputs)
    shows a tqdm bar.
    """
    wdt = _check_params(k1, k2, lambda_value, weight_dtype)
    q_g, q_q, g_g = _as_dist(q_g_dist, "q_g_dist"), _as_dist(q_q_dist, "q_q_dist"), _as_dist(g_g_dist, "g_g_dist")
    q, g = q_g.shape
    if q_q.shape != (q, q):
        raise ValueError(f"q_q_dist must be {q}×{q} (q_g_dist is {q}×{g}), got {q_q.shape[0]}×{q_q.shape[1]}")
    if g_g.shape != (g, g):
        raise ValueError(f"g_g_dist must be {g}×{g} (q_g_dist is {q}×{g}), got {g_g.shape[0]}×{g_g.shape[1]}")
    if q == 0 or g == 0:
        raise ValueError(f"need at least one query and one gallery item, got q={q}, g={g}")
    n = q + g
    K, K1, H1, kq = _sizes(n, k1, k2)
    col_chunk = 4096
    steps = 2 * (-(-g // col_chunk)) + 2 * (-(-q // col_chunk)) + 4
    with tqdm(total=steps, desc="re-ranking", disable=not _show(progress, n * n, 1e9)) as bar:
        # Column maxima of the squared stacked matrix: the reference's per-item normaliser.
        m = np.empty(n, np.float32)
        m[:q] = np.maximum(_abs_max(q_q, 0, "q_q_dist"), _abs_max(q_g, 1, "q_g_dist"))
        m[q:] = np.maximum(_abs_max(q_g, 0, "q_g_dist"), _abs_max(g_g, 0, "g_g_dist"))
        _check_max(m, q, "re_ranking")
        bar.update(1)

        topv = np.full((n, K), np.inf, np.float32)
        topi = np.full((n, K), _NO_INDEX, np.int32)
        seen = np.zeros(n, np.float32)
        for c0 in range(0, q, col_chunk):
            c1 = min(q, c0 + col_chunk)
            _scan_cols(q_q, c0, c1, 0, 0, m, topv, topi, seen)
            _scan_rows(q_g, c0, c1, q, 0, m, topv, topi, seen)
            bar.update(2)
        for c0 in range(0, g, col_chunk):
            c1 = min(g, c0 + col_chunk)
            _scan_cols(q_g, c0, c1, 0, q, m, topv, topi, seen)
            _scan_cols(g_g, c0, c1, q, q, m, topv, topi, seen)
            bar.update(2)

        indptr, indices = _expansion_sets(topi, K1, H1)
        b_values = np.empty(indices.shape[0], np.float32)
        _gather_dense(indptr, indices, q_q, q_g, g_g, m, q, b_values)
        data = _weights(indptr, b_values, wdt)
        bar.update(1)
        qptr, qidx, qval, colptr, rows, vals = _encode(indptr, indices, data, topi, kq, k2, q, n, wdt)
        bar.update(1)
        out = np.empty((q, g), np.float32)
        c1_, c2_ = _blend_constants(lambda_value)
        _final_dense(qptr, qidx, qval, colptr, rows, vals, q_g, m, c1_, c2_, out)
        bar.update(1)
    return out


def _as_feats(x, name):
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (N×D), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    for s in range(0, len(a), 8192):
        bad = np.flatnonzero(~np.isfinite(a[s:s + 8192]).all(axis=1))
        if bad.size:
            raise ValueError(f"{name} row {s + int(bad[0])} is not finite")
    return a


def _split(n, size):
    """Near-equal contiguous blocks of at most ``size`` rows (no tiny trailing block)."""
    nb = -(-n // size)
    edges = [n * b // nb for b in range(nb + 1)]
    return list(zip(edges[:-1], edges[1:]))


class _SymmetricBlocks:
    """The symmetric (q+g)² distance matrix, one block at a time, never stored.

    Block (I, J), I <= J, is ``pairwise_distance(X_I, X_J)`` (upper triangle mirrored when I == J);
    (J, I) is its transpose. Recomputing a block repeats the very same call, so it is bit-identical.
    """

    def __init__(self, Q, G, metric, block_size):
        self.parts = [Q[s:e] for s, e in _split(len(Q), block_size)] + \
                     [G[s:e] for s, e in _split(len(G), block_size)]
        sizes = [len(p) for p in self.parts]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n_query_blocks = len(_split(len(Q), block_size))
        self.metric = metric

    def __len__(self):
        return len(self.parts)

    def block_of(self, items):
        return np.searchsorted(self.offsets, items, side="right") - 1

    def get(self, bi, bj):
        if bi > bj:
            return self.get(bj, bi).T
        d = pairwise_distance(self.parts[bi], self.parts[bj], self.metric)
        if bi == bj:
            _mirror_upper(d)
        return d


def _exact_rows(blocks, items, m, L):
    """Exact (B, index)-ranked lists for a few items, from their full recomputed rows."""
    n = blocks.offsets[-1]
    out_i = np.empty((len(items), L), np.int32)
    out_b = np.empty((len(items), L), np.float32)
    out_d2 = np.empty((len(items), L), np.float32)
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
            b = d2[s:s + 256] / m[items[rows]][:, None]
            order = topk_smallest(b, L)
            out_i[rows] = order
            out_b[rows] = np.take_along_axis(b, order, axis=1)
            out_d2[rows] = np.take_along_axis(d2[s:s + 256], order, axis=1)
    return out_i, out_b, out_d2


def _fill_missing(blocks, indptr, indices, missing, m, b_values):
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
        b_values[miss[sel]] = (d * d) / m[rows[sel]]


def re_ranking_features(query_feats, gallery_feats, k1=20, k2=6, lambda_value=0.3, topk=100,
                        metric="euclidean", weight_dtype=np.float32, block_size=2048, progress=None):
    """Top-``topk`` k-reciprocal re-ranking straight from features, at any gallery size.

    Equivalent to ``re_ranking(D_qg, D_qq, D_gg, ...)`` on ``pairwise_distance(..., metric)``
    matrices made exactly symmetric (upper triangle mirrored), followed by a stable sort of each
    query row, but memory is O((q+g)·k1 + block_size²): each distance block pair is computed once
    for the neighbour lists and once more for query×gallery to rank. Returns
    ``(indices int64 q×K, distances float32 q×K)``, K = min(topk, g), nearest first, ties to the
    lower gallery index. ``block_size`` trades memory for GEMM efficiency.
    """
    wdt = _check_params(k1, k2, lambda_value, weight_dtype)
    Q, G = _as_feats(query_feats, "query_feats"), _as_feats(gallery_feats, "gallery_feats")
    if Q.shape[1] != G.shape[1]:
        raise ValueError(f"query_feats are {Q.shape[1]}-d but gallery_feats are {G.shape[1]}-d")
    for name, v in (("topk", topk), ("block_size", block_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    q, g = len(Q), len(G)
    n = q + g
    K, K1, H1, kq = _sizes(n, k1, k2)
    L = min(n, _MARGIN * K)
    blocks = _SymmetricBlocks(Q, G, metric, block_size)
    nb, nqb = len(blocks), blocks.n_query_blocks
    off = blocks.offsets
    steps = nb * (nb + 1) // 2 + nqb * (nb - nqb) + 2
    show = _show(progress, 2.0 * n * n * Q.shape[1], 2e12)
    with tqdm(total=steps, desc="re-ranking", disable=not show) as bar:
        # Pass 1: the L nearest items of every item by squared distance, and its farthest one.
        ones = np.ones(n, np.float32)
        topd2 = np.full((n, L), np.inf, np.float32)
        topi = np.full((n, L), _NO_INDEX, np.int32)
        m = np.zeros(n, np.float32)
        for bi in range(nb):
            for bj in range(bi, nb):
                d = blocks.get(bi, bj)
                _scan_pair(d, off[bi], off[bj], _pair_work(*d.shape, bi == bj), ones, topd2, topi, m)
                bar.update(1)
        _check_max(m, q, "re_ranking_features")
        topb, ambiguous = _refine(topd2, topi, m, K, L == n)
        amb = np.flatnonzero(ambiguous)
        if amb.size:
            topi[amb], topb[amb], topd2[amb] = _exact_rows(blocks, amb, m, L)

        R = np.ascontiguousarray(topi[:, :K])
        indptr, indices = _expansion_sets(R, K1, H1)
        b_values = np.empty(indices.shape[0], np.float32)
        missing = np.empty(indices.shape[0], np.bool_)
        _gather_lists(indptr, indices, topi, topb, topd2, m, b_values, missing)
        _fill_missing(blocks, indptr, indices, missing, m, b_values)
        del topi, topb, topd2
        data = _weights(indptr, b_values, wdt)
        qptr, qidx, qval, colptr, rows, vals = _encode(indptr, indices, data, R, kq, k2, q, n, wdt)
        optr, oidx, ojac = _jaccard_sparse(qptr, qidx, qval, colptr, rows, vals, q, g)
        bar.update(2)

        # Pass 2: stream query×gallery blocks into each query's top-K final distances.
        kout = min(topk, g)
        best_v = np.full((q, kout), np.inf, np.float32)
        best_i = np.full((q, kout), _NO_INDEX, np.int32)
        cursor = optr[:-1].copy()
        c1, c2 = _blend_constants(lambda_value)
        for bi in range(nqb):
            for bj in range(nqb, nb):
                _final_topk(blocks.get(bi, bj), off[bi], off[bj] - q, m, optr, oidx, ojac,
                            cursor, c1, c2, best_v, best_i)
                bar.update(1)
    return best_i.astype(np.int64), best_v
