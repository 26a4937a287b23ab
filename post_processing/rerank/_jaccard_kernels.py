"""Numba kernels, part 2: k-reciprocal weights, local query expansion, the inverted index, and the
Jaccard and final distances.

Weights live in CSR rows (``indptr``, ascending ``indices``, values); float16 weights travel as
their uint16 bit pattern (numba has no float16 type on the CPU) and are read through :func:`_val`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from ._neighbour_kernels import _insert, _sq


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
def _query_expand(indptr, indices, data, neighbours, qe_rows):
    """Sparse ``V_qe[i] = mean(V[neighbours[i, :qe_rows]])`` summed in neighbour order, as numpy's
    ``mean(axis=0)``.

    Returns (indptr, indices, float32 values) with each row's columns ascending.
    """
    n = indptr.shape[0] - 1
    bound = 0
    for i in range(n):
        for r in range(qe_rows):
            bound += indptr[neighbours[i, r] + 1] - indptr[neighbours[i, r]]
    out_ptr = np.zeros(n + 1, np.int64)
    out_idx = np.empty(bound, np.int32)
    out_val = np.empty(bound, np.float32)
    kf = np.float32(qe_rows)
    acc = np.zeros(n, np.float32)
    mark = np.zeros(n, np.int64)
    total = 0
    for i in range(n):
        start = total
        for r in range(qe_rows):
            rr = neighbours[i, r]
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
