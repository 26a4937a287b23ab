"""ReID evaluation with numba kernels: Market/VeRi protocol, top-K rankings, AIC mAP@100, CUHK03, VehicleID.

Protocol (torchreid ``eval_market1501`` / fast-reid): for each query, gallery images with the
same id *and* the same camera are junk and removed; the rest are ranked by distance; a query
with no remaining match is skipped. ``AP`` is the mean over matches of precision at the match,
``INP`` is #matches / (rank of the last match + 1), ``cmc[r]`` the fraction of valid queries whose
first match is within the top ``r + 1``. All values are fractions in [0, 1].

Ties: equal distances are ranked by gallery index (lower first), i.e. the order of
``np.argsort(distmat, axis=1, kind="stable")``. torchreid calls ``np.argsort`` with the default
(unstable) kind, whose tie order depends on the numpy version and CPU; away from ties the results
are the same.

Where torchreid would build a ragged CMC (fewer kept gallery images than ``max_rank``), the CMC is
continued with its last value: a valid query's curve has reached 1 by then. ``max_rank`` is
clipped to the gallery size, as torchreid does.

The dense kernel never sorts a full row: it sorts only the query's matches and counts, for each
match, the non-matches ranked ahead of it — O(gallery) per query instead of O(gallery·log).

These functions are also reachable by protocol name: see :mod:`post_processing.protocols`.
"""
from __future__ import annotations

import hashlib
from typing import NamedTuple, Optional, Sequence

import numpy as np
from numba import njit, prange

from post_processing.distance import pairwise_distance, topk_smallest
from post_processing.errors import ReidError

class EvaluationError(ReidError, ValueError):
    """Labels, distances or rankings that cannot be evaluated; the message names which and why."""


@njit(cache=True, parallel=True)
def _market_dense(distmat, q_pids, g_pids, q_camids, g_camids, id_start, id_members):
    """Per query: AP, INP and the rank of the first match (-1 when the query has no valid match).

    ``id_members[id_start[u]:id_start[u + 1]]`` are the gallery indices of id ``u`` (ascending).
    """
    nq, ng = distmat.shape
    ap = np.zeros(nq)
    inp = np.zeros(nq)
    first = np.full(nq, -1, np.int64)
    for q in prange(nq):
        d = distmat[q]
        qp = q_pids[q]
        qc = q_camids[q]
        npos = 0
        for t in range(id_start[qp], id_start[qp + 1]):
            if g_camids[id_members[t]] != qc:
                npos += 1
        if npos == 0:
            continue
        pos = np.empty(npos, np.int64)
        k = 0
        for t in range(id_start[qp], id_start[qp + 1]):
            if g_camids[id_members[t]] != qc:
                pos[k] = id_members[t]
                k += 1
        pos_d = d[pos]
        order = np.argsort(pos_d, kind="mergesort")  # stable: ties stay in gallery-index order
        spos = pos[order]
        sd = pos_d[order]
        # ahead[i]: non-matches ranked after match i-1 and before match i.
        ahead = np.zeros(npos, np.int64)
        for j in range(ng):
            dj = d[j]
            if dj > sd[npos - 1] or (dj == sd[npos - 1] and j > spos[npos - 1]):
                continue  # behind the last match: irrelevant
            if g_pids[j] == qp:  # matches and junk
                continue
            if dj < sd[0] or (dj == sd[0] and j < spos[0]):
                ahead[0] += 1
                continue
            # Branch-free search for the last match ranked before j (match 0 is).
            base = 0
            n = npos
            while n > 1:
                half = n >> 1
                m = base + half
                if (sd[m] < dj) | ((sd[m] == dj) & (spos[m] < j)):
                    base = m
                n -= half
            ahead[base + 1] += 1
        total = 0.0
        before = 0
        rank = 0
        for i in range(npos):
            before += ahead[i]
            rank = i + before
            total += (i + 1.0) / (rank + 1.0)
            if i == 0:
                first[q] = rank
        ap[q] = total / npos
        inp[q] = npos / (rank + 1.0)
    return ap, inp, first


@njit(cache=True, parallel=True)
def _market_ranking(indices, q_pids, g_pids, q_camids, g_camids, num_rel):
    """Like ``_market_dense`` from ranked gallery indices; AP is divided by ``num_rel[q]``.

    ``bad[q]`` is 1 for an index out of range and 2 for a repeated index in row q.
    """
    nq, k = indices.shape
    ng = g_pids.shape[0]
    ap = np.zeros(nq)
    inp = np.zeros(nq)
    first = np.full(nq, -1, np.int64)
    bad = np.zeros(nq, np.int64)
    for q in prange(nq):
        qp = q_pids[q]
        qc = q_camids[q]
        seen = np.zeros(ng, np.bool_)
        hits = 0
        rank = 0
        last = -1
        total = 0.0
        for t in range(k):
            j = indices[q, t]
            if j < 0 or j >= ng:
                bad[q] = 1
                break
            if seen[j]:
                bad[q] = 2
                break
            seen[j] = True
            if g_pids[j] == qp:
                if g_camids[j] == qc:
                    continue
                hits += 1
                total += hits / (rank + 1.0)
                if hits == 1:
                    first[q] = rank
                last = rank
            rank += 1
        if num_rel[q] > 0:
            ap[q] = total / num_rel[q]
            if hits == num_rel[q]:
                inp[q] = hits / (last + 1.0)
    return ap, inp, first, bad


@njit(cache=True, parallel=True)
def _count_relevant(q_pids, q_camids, g_camids, id_start, id_members, ignore_camera):
    """Per query: gallery images of its id (from another camera unless ``ignore_camera``)."""
    nq = q_pids.shape[0]
    out = np.zeros(nq, np.int64)
    for q in prange(nq):
        c = 0
        for t in range(id_start[q_pids[q]], id_start[q_pids[q] + 1]):
            if ignore_camera or g_camids[id_members[t]] != q_camids[q]:
                c += 1
        out[q] = c
    return out


@njit(cache=True, parallel=True)
def _single_shot_ranks(distmat, q_pids, g_pids, q_camids, g_camids, id_start, id_members, keys, chosen, valid):
    """Rank of the query's match in each repeat's one-image-per-id gallery (-1 for invalid queries).

    ``chosen[r, u]``: the gallery image of id ``u`` in repeat ``r`` (lowest key; -1 if ``u`` has
    none). The query's own id instead uses its lowest-key image from another camera.
    """
    nq = distmat.shape[0]
    repeats, nids = chosen.shape
    ranks = np.full((nq, repeats), -1, np.int64)
    for q in prange(nq):
        if not valid[q]:
            continue
        d = distmat[q]
        qp = q_pids[q]
        for r in range(repeats):
            p = -1
            for t in range(id_start[qp], id_start[qp + 1]):
                j = id_members[t]
                if g_camids[j] != q_camids[q] and (p < 0 or keys[r, j] < keys[r, p]):
                    p = j
            dp = d[p]
            rank = 0
            for u in range(nids):
                c = chosen[r, u]
                if u == qp or c < 0:
                    continue
                if d[c] < dp or (d[c] == dp and c < p):
                    rank += 1
            ranks[q, r] = rank
    return ranks


def _encode(q, g):
    """Map query/gallery labels (ints or strings) to shared int64 codes."""
    q = np.asarray(q).reshape(-1)
    g = np.asarray(g).reshape(-1)
    _, inv = np.unique(np.concatenate([q, g]), return_inverse=True)
    inv = inv.astype(np.int64).reshape(-1)
    return inv[: len(q)], inv[len(q):]


class _Labels(NamedTuple):
    """Integer-coded labels plus the gallery grouped by id (CSR: ``members[start[u]:start[u+1]]``)."""

    qp: np.ndarray
    gp: np.ndarray
    qc: np.ndarray
    gc: np.ndarray
    start: np.ndarray
    members: np.ndarray


def _prepare(nq, ng, q_pids, g_pids, q_camids, g_camids) -> _Labels:
    for name, arr, n in (("q_pids", q_pids, nq), ("g_pids", g_pids, ng), ("q_camids", q_camids, nq),
                         ("g_camids", g_camids, ng)):
        if np.asarray(arr).reshape(-1).shape[0] != n:
            raise EvaluationError(f"{name} has {np.asarray(arr).size} entries, expected {n}")
    qp, gp = _encode(q_pids, g_pids)
    qc, gc = _encode(q_camids, g_camids)
    nids = int(max(qp.max(initial=-1), gp.max(initial=-1))) + 1
    start = np.concatenate([[0], np.cumsum(np.bincount(gp, minlength=nids))]).astype(np.int64)
    return _Labels(qp, gp, qc, gc, start, np.argsort(gp, kind="stable"))


def _check_distmat(distmat) -> np.ndarray:
    distmat = np.asarray(distmat)
    if distmat.ndim != 2 or not np.issubdtype(distmat.dtype, np.floating):
        raise EvaluationError(f"distmat must be a 2-D float array (queries × gallery), "
                              f"got {distmat.dtype} {distmat.shape}")
    for start in range(0, len(distmat), 256):  # in blocks: no Q×G temporary
        nan_rows = np.isnan(distmat[start:start + 256]).any(axis=1)
        if nan_rows.any():
            raise EvaluationError(f"distmat row {start + int(np.flatnonzero(nan_rows)[0])} contains NaN")
    return np.ascontiguousarray(distmat)


def _result(ap, inp, first, valid, max_rank: int) -> dict:
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise EvaluationError("no query has a valid match in the gallery (after removing same-id same-camera images)")
    hit = first[valid & (first >= 0)]
    hist = np.bincount(np.minimum(hit, max_rank), minlength=max_rank + 1)[:max_rank]
    return {"mAP": float(np.mean(ap[valid])), "mINP": float(np.mean(inp[valid])),
            "cmc": np.cumsum(hist) / num_valid, "num_valid": num_valid}


def evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50) -> dict:
    """Market-1501 / VeRi-776 protocol on a query×gallery distance matrix.

    Returns ``{"mAP", "mINP", "cmc" (max_rank,), "num_valid"}``; same values as torchreid's
    ``eval_market1501`` and fast-reid's evaluator (ties: lower gallery index first).
    """
    distmat = _check_distmat(distmat)
    nq, ng = distmat.shape
    lab = _prepare(nq, ng, q_pids, g_pids, q_camids, g_camids)
    ap, inp, first = _market_dense(distmat, *lab)
    return _result(ap, inp, first, first >= 0, min(max_rank, ng))


def _ranking(indices, lab: _Labels, num_rel):
    indices = np.asarray(indices)
    if indices.ndim != 2 or not np.issubdtype(indices.dtype, np.integer):
        raise EvaluationError(f"indices must be a 2-D integer array (queries × K), "
                              f"got {indices.dtype} {indices.shape}")
    if len(indices) != len(lab.qp):
        raise EvaluationError(f"indices has {len(indices)} rows, expected one per query ({len(lab.qp)})")
    ap, inp, first, bad = _market_ranking(np.ascontiguousarray(indices, dtype=np.int64), lab.qp, lab.gp, lab.qc,
                                          lab.gc, num_rel)
    if bad.any():
        q = int(np.flatnonzero(bad)[0])
        why = f"an index outside [0, {len(lab.gp)})" if bad[q] == 1 else "a gallery index twice"
        raise EvaluationError(f"indices row {q} contains {why}")
    return ap, inp, first


def evaluate_ranking(indices, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50, num_relevant=None) -> dict:
    """The :func:`evaluate` protocol from ranked gallery indices (Q×K, best first, K ≤ gallery size).

    AP divides by the number of relevant gallery images overall (``num_relevant`` per query, else
    counted from ``g_pids``/``g_camids``), so a truncated list is penalised for matches it misses;
    INP is 0 for a query whose matches are not all in the list. With K = the whole gallery in
    stable-argsort order the result equals :func:`evaluate` exactly.
    """
    ng = np.asarray(g_pids).size
    ap, inp, first, num_rel = _ranking_with_relevant(indices, q_pids, g_pids, q_camids, g_camids, num_relevant)
    return _result(ap, inp, first, num_rel > 0, min(max_rank, ng))


def average_precisions(indices, q_pids, g_pids, q_camids, g_camids, num_relevant=None) -> np.ndarray:
    """Each query's AP under the :func:`evaluate_ranking` protocol (its mAP is their mean over the
    non-NaN entries); NaN for a query without a valid match in the gallery. To find the failures."""
    ap, _, _, num_rel = _ranking_with_relevant(indices, q_pids, g_pids, q_camids, g_camids, num_relevant)
    return np.where(num_rel > 0, ap, np.nan)


def _ranking_with_relevant(indices, q_pids, g_pids, q_camids, g_camids, num_relevant):
    """``(ap, inp, first, num_rel)`` per query of a ranking (see :func:`evaluate_ranking`)."""
    nq = np.asarray(indices).shape[0]
    ng = np.asarray(g_pids).size
    lab = _prepare(nq, ng, q_pids, g_pids, q_camids, g_camids)
    if num_relevant is None:
        num_rel = _count_relevant(lab.qp, lab.qc, lab.gc, lab.start, lab.members, False)
    else:
        num_rel = np.asarray(num_relevant, dtype=np.int64).reshape(-1)
        if num_rel.shape[0] != nq:
            raise EvaluationError(f"num_relevant has {num_rel.shape[0]} entries, expected {nq}")
    return (*_ranking(indices, lab, num_rel), num_rel)


def aic_map(indices_or_distmat, q_pids, g_pids, topk: int = 100) -> float:
    """AI City Challenge track-2 score: mAP over each query's top ``topk`` (0-based gallery indices).

    The challenge defines it as the mean over queries of AP over the top K = 100 results, with no
    camera filtering. The published definition does not state the AP denominator; this uses
    min(#relevant, topk) (the usual AP@K), so a perfect top-100 scores 1 even for ids with more
    than 100 gallery images. A float array is taken as a distance matrix and ranked here (ties:
    lower index first); an integer array as ready rankings, of which the first ``topk`` are used.
    Queries without any gallery match are skipped.
    """
    ap = aic_average_precisions(indices_or_distmat, q_pids, g_pids, topk)
    if np.isnan(ap).all():
        raise EvaluationError("no query has a match in the gallery")
    return float(np.nanmean(ap))


def aic_average_precisions(indices_or_distmat, q_pids, g_pids, topk: int = 100) -> np.ndarray:
    """Each query's AP@``topk`` of :func:`aic_map` (its mean over the non-NaN entries); NaN for a
    query without any gallery match."""
    arr = np.asarray(indices_or_distmat)
    if arr.ndim != 2:
        raise EvaluationError(f"expected a 2-D distance matrix or ranking (queries × gallery/K), "
                              f"got shape {arr.shape}")
    arr = topk_smallest(_check_distmat(arr), topk) if np.issubdtype(arr.dtype, np.floating) else arr[:, :topk]
    nq = arr.shape[0]
    ng = np.asarray(g_pids).size
    zeros_q, ones_g = np.zeros(nq, np.int64), np.ones(ng, np.int64)
    lab = _prepare(nq, ng, q_pids, g_pids, zeros_q, ones_g)
    num_rel = np.minimum(_count_relevant(lab.qp, lab.qc, lab.gc, lab.start, lab.members, True), topk)
    ap, _, _ = _ranking(arr, lab, num_rel)
    return np.where(num_rel > 0, ap, np.nan)


def _one_per_id(pids: np.ndarray, keys: np.ndarray, nids: int) -> np.ndarray:
    """Index of the lowest-key item of each pid code 0..nids-1, -1 where the pid has no item."""
    order = np.lexsort((keys, pids))
    head = np.ones(len(order), bool)
    head[1:] = pids[order][1:] != pids[order][:-1]
    out = np.full(nids, -1, np.int64)
    out[pids[order][head]] = order[head]
    return out


def evaluate_cuhk03(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50, repeats: int = 10,
                    seed: int = 0) -> dict:
    """CUHK03 single-shot protocol (torchreid ``eval_cuhk03``): CMC averaged over ``repeats``
    random galleries of one image per id (the query's id drawn from other cameras); mAP/mINP are
    the usual multi-shot values. Each repeat draws one gallery for all queries from
    ``numpy.random.default_rng(seed)``, so the draws differ from torchreid's, not the expectation.
    """
    distmat = _check_distmat(distmat)
    nq, ng = distmat.shape
    lab = _prepare(nq, ng, q_pids, g_pids, q_camids, g_camids)
    ap, inp, first = _market_dense(distmat, *lab)
    valid = first >= 0
    keys = np.random.default_rng(seed).random((repeats, ng))
    chosen = np.stack([_one_per_id(lab.gp, keys[r], len(lab.start) - 1) for r in range(repeats)])
    ranks = _single_shot_ranks(distmat, *lab, keys, chosen, valid)
    out = _result(ap, inp, first, valid, min(max_rank, ng))
    max_rank = len(out["cmc"])
    hist = np.bincount(np.minimum(ranks[valid].reshape(-1), max_rank), minlength=max_rank + 1)[:max_rank]
    out["cmc"] = np.cumsum(hist) / (out["num_valid"] * repeats)
    return out


def evaluate_cuhk03_ranking(indices, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50, repeats: int = 10,
                            seed: int = 0) -> dict:
    """:func:`evaluate_cuhk03` from ranked gallery indices (Q×K, best first): the same repeats and
    draws; a query whose drawn match is not in its list counts as a miss at every rank shown. mAP/mINP
    are :func:`evaluate_ranking`'s. With K = the whole gallery in stable-argsort order the CMC equals
    :func:`evaluate_cuhk03`'s."""
    indices = np.asarray(indices)
    ng = np.asarray(g_pids).size
    out = evaluate_ranking(indices, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)
    lab = _prepare(len(indices), ng, q_pids, g_pids, q_camids, g_camids)
    keys = np.random.default_rng(seed).random((repeats, ng))
    chosen_all = [_one_per_id(lab.gp, keys[r], len(lab.start) - 1) for r in range(repeats)]
    max_rank = len(out["cmc"])
    hist = np.zeros(max_rank + 1, np.int64)
    valid = 0
    for q in range(len(indices)):
        members = lab.members[lab.start[lab.qp[q]]:lab.start[lab.qp[q] + 1]]
        positives = members[lab.gc[members] != lab.qc[q]]
        if len(positives) == 0:
            continue
        valid += 1
        row = indices[q]
        for r in range(repeats):
            chosen = chosen_all[r]
            p = positives[np.argmin(keys[r][positives])]
            where = np.flatnonzero(row == p)
            if len(where) == 0:
                hist[max_rank] += 1
                continue
            ahead = row[:where[0]]
            ahead_ids = lab.gp[ahead]
            hist[min(int(np.sum((chosen[ahead_ids] == ahead) & (ahead_ids != lab.qp[q]))), max_rank)] += 1
    out["cmc"] = np.cumsum(hist[:max_rank]) / (valid * repeats)
    return out


def draw_keys(num: int, repeats: int, seed: int = 0, names: Optional[Sequence[str]] = None) -> np.ndarray:
    """``repeats × num`` keys of the VehicleID draws: the image of each id with the lowest key is its
    gallery image. With ``names`` each key is a hash of (seed, repeat, image name), so a draw does not
    depend on the order of the images (the loader and the evaluator get the same draw from different
    orders); without, rows of ``numpy.random.default_rng(seed)``."""
    if names is None:
        return np.random.default_rng(seed).random((repeats, num))
    if len(names) != num:
        raise EvaluationError(f"{len(names)} image names for {num} images")
    return np.array([[int.from_bytes(hashlib.blake2b(f"{seed}/{r}/{n}".encode(), digest_size=8).digest(), "big")
                      / 2.0 ** 64 for n in names] for r in range(repeats)])


def vehicleid_draw(pids, keys) -> np.ndarray:
    """Sorted indices of one draw's gallery: per id, the image with the lowest of ``keys`` (one row of
    :func:`draw_keys`); every other image is a query. Shared by the VehicleID loader and evaluator."""
    codes = np.unique(np.asarray(pids).reshape(-1), return_inverse=True)[1].reshape(-1).astype(np.int64)
    return np.sort(_one_per_id(codes, np.asarray(keys), int(codes.max(initial=-1)) + 1))


def evaluate_vehicleid(features, pids, repeats: int = 10, seed: int = 0, max_rank: int = 50,
                       metric: str = "euclidean", names: Optional[Sequence[str]] = None, topk: int = 100) -> dict:
    """VehicleID protocol: per repeat one random image per id forms the gallery, all others are
    queries (no cameras, nothing is junk); each draw is ranked within its own gallery and the
    metrics are averaged over repeats.

    ``features`` is N×D, or an N×N distance matrix with ``metric="precomputed"``. The draws are
    :func:`vehicleid_draw` of :func:`draw_keys` (``names``: the image names, which make them the
    loader's draws ``repeat=0..repeats-1``). Besides the means, ``aic_map`` is the mean of each
    draw's :func:`aic_map` @``topk`` and ``draws`` lists each draw's ``repeat``, ``mAP``, ``mINP``,
    ``rank1``, ``aic_map`` and sizes.
    """
    x = np.asarray(features)
    pids = np.asarray(pids).reshape(-1)
    if x.ndim != 2 or len(x) != len(pids) or (metric == "precomputed" and x.shape[1] != len(x)):
        raise EvaluationError(f"features must be N×D (or N×N with metric='precomputed') for {len(pids)} pids, "
                              f"got {x.shape}")
    codes = np.unique(pids, return_inverse=True)[1].reshape(-1).astype(np.int64)
    keys = draw_keys(len(codes), repeats, seed, names)
    runs, draws = [], []
    for r in range(repeats):
        gallery = vehicleid_draw(codes, keys[r])
        query = np.setdiff1d(np.arange(len(codes)), gallery)
        if metric == "precomputed":
            dist = np.ascontiguousarray(x[np.ix_(query, gallery)])
        else:
            dist = pairwise_distance(x[query], x[gallery], metric)
        run = evaluate(dist, codes[query], codes[gallery], np.zeros(len(query)), np.ones(len(gallery)), max_rank)
        run["aic_map"] = aic_map(dist, codes[query], codes[gallery], topk=min(topk, len(gallery)))
        runs.append(run)
        draws.append({"repeat": r, "mAP": run["mAP"], "mINP": run["mINP"], "rank1": float(run["cmc"][0]),
                      "aic_map": run["aic_map"], "num_query": len(query), "num_gallery": len(gallery)})
    return {"mAP": float(np.mean([r["mAP"] for r in runs])), "mINP": float(np.mean([r["mINP"] for r in runs])),
            "cmc": np.mean([r["cmc"] for r in runs], axis=0), "num_valid": runs[0]["num_valid"],
            "repeats": repeats, "aic_map": float(np.mean([r["aic_map"] for r in runs])), "draws": draws}


def evaluate_numpy(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50) -> dict:
    """Reference for :func:`evaluate`: torchreid's algorithm (stable argsort of every row) in plain
    numpy. Slow and memory-hungry (Q×G int64 ranks); used to verify the kernel in the tests and
    in ``scripts/bench/evaluate.py``.
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1, kind="stable")
    matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for q in range(num_q):
        order = indices[q]
        keep = ~((g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q]))
        raw = matches[q][keep]
        if not raw.any():
            continue
        cmc = raw.cumsum()
        last = np.flatnonzero(raw)[-1]
        all_inp.append(cmc[last] / (last + 1.0))
        cmc = np.minimum(cmc, 1)[:max_rank]
        all_cmc.append(np.pad(cmc, (0, max_rank - len(cmc)), constant_values=1))
        precision = raw.cumsum() / np.arange(1.0, len(raw) + 1.0)
        # Summed left to right (as the kernel does) so both give bit-identical results.
        all_ap.append(sum(precision[raw == 1].tolist()) / raw.sum())
    if not all_ap:
        raise EvaluationError("no query has a valid match in the gallery (after removing same-id same-camera images)")
    return {"mAP": float(np.mean(all_ap)), "mINP": float(np.mean(all_inp)),
            "cmc": np.asarray(all_cmc).sum(0) / len(all_ap), "num_valid": len(all_ap)}
