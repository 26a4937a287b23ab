"""Steps that use gallery tracks (AIC ``test_track.txt``: images of one vehicle in one camera).

Tracks arrive as ``track_ids``: one int per gallery image, the 0-based track (line) index the
dataset loader assigned, ``-1`` for an image in no track. Track files are parsed only by the loader.
"""
from __future__ import annotations

from typing import List

import numpy as np

from .features import l2_normalize

WEIGHTINGS = ("mean", "inverse_distance", "pairwise")


def _check_track_ids(track_ids, n: int, what: str) -> np.ndarray:
    t = np.asarray(track_ids)
    if t.ndim != 1 or len(t) != n:
        raise ValueError(f"track_ids must be 1-D with one entry per {what} ({n}), got shape {t.shape}")
    if t.size and not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"track_ids must be integers (-1 = no track), got dtype {t.dtype}")
    if t.size and t.min() < -1:
        raise ValueError(f"track_ids must be >= -1 (-1 = no track), got {int(t.min())}")
    return t.astype(np.int64, copy=False)


def _groups(track_ids: np.ndarray):
    """(order, starts): indices of tracked images sorted by track, and where each track begins."""
    tracked = np.flatnonzero(track_ids >= 0)
    order = tracked[np.argsort(track_ids[tracked], kind="stable")]
    sorted_ids = track_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]) if len(order) else order
    return order, starts


def track_average(gf, track_ids, weighting: str = "mean") -> np.ndarray:
    """Replace each tracked gallery feature by an average over its track, then L2-normalise all rows.

    weighting:
      ``"mean"`` (default) — plain mean; every member of a track gets the same vector.
      ``"inverse_distance"`` — members weighted by 1/(d + 0.01), d = euclidean distance of the
        member to the plain track mean, so outlier crops count less; members again share one vector.
      ``"pairwise"`` — the AIC 2020 VOC-ReID variant: member i becomes Σ_j w_ij f_j with
        w_ij = 1/(|f_i − f_j|² + 0.01), so each member keeps a bias towards itself (w_ii = 100).
    Images with track id -1 are only normalised. Expects L2-normalised input (the pipeline
    normalises first); returns (ng, D) float32 unit rows.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; expected one of {', '.join(WEIGHTINGS)}")
    g = np.asarray(gf)
    if g.ndim != 2:
        raise ValueError(f"gf must be a 2-D array (N×D), got shape {g.shape}")
    t = _check_track_ids(track_ids, len(g), "gallery image")
    out = np.array(g, dtype=np.float32)
    order, starts = _groups(t)
    if len(order) == 0:
        return l2_normalize(out)
    members = g[order].astype(np.float64)
    sizes = np.diff(np.r_[starts, len(order)])
    means = np.add.reduceat(members, starts, axis=0) / sizes[:, None]
    if weighting == "mean":
        out[order] = np.repeat(means, sizes, axis=0)
    elif weighting == "inverse_distance":
        w = 1.0 / (np.linalg.norm(members - np.repeat(means, sizes, axis=0), axis=1) + 0.01)
        avg = np.add.reduceat(members * w[:, None], starts, axis=0) / np.add.reduceat(w, starts)[:, None]
        out[order] = np.repeat(avg, sizes, axis=0)
    else:
        for start, size in zip(starts, sizes):
            f = members[start:start + size]
            sq = np.maximum((f * f).sum(1)[:, None] + (f * f).sum(1)[None, :] - 2.0 * f @ f.T, 0.0)
            out[order[start:start + size]] = (1.0 / (sq + 0.01)) @ f
    return l2_normalize(out)


def track_group_distance(distmat, track_ids) -> np.ndarray:
    """Give every tracked gallery column its track's smallest distance to the query (per row).

    distmat: (nq, ng) distances; track_ids: (ng,) ints, -1 = no track (column left as is).
    A track is then ranked as a whole at its best member's position. Returns float32 (nq, ng).
    """
    d = np.asarray(distmat)
    if d.ndim != 2:
        raise ValueError(f"distmat must be a 2-D array (nq×ng), got shape {d.shape}")
    t = _check_track_ids(track_ids, d.shape[1], "distmat column")
    out = np.array(d, dtype=np.float32)
    order, starts = _groups(t)
    if len(order) == 0 or d.shape[0] == 0:
        return out
    sizes = np.diff(np.r_[starts, len(order)])
    mins = np.minimum.reduceat(out[:, order], starts, axis=1)
    out[:, order] = np.repeat(mins, sizes, axis=1)
    return out


def track_expand(ranking, track_ids, topk: int = 100) -> np.ndarray:
    """Walk each query's ranked gallery list and append whole tracks in order until ``topk``.

    ranking: (nq, K) gallery indices, best first (K may be < ng); track_ids: (ng,) ints, -1 = no
    track. The first time an image of a track appears, all of that track's images are appended —
    members in this query's ranked order, members absent from ``ranking`` after them by index; an
    untracked image is appended alone. No index repeats; each row is cut at ``topk`` (default 100).
    Raises ValueError when a row cannot reach ``topk`` distinct images. Returns int64 (nq, topk).
    """
    r = np.asarray(ranking)
    if r.ndim != 2 or (r.size and not np.issubdtype(r.dtype, np.integer)):
        raise ValueError(f"ranking must be a 2-D integer array (nq×K), got shape {r.shape} dtype {r.dtype}")
    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
    t = np.asarray(track_ids)
    if t.ndim != 1:
        raise ValueError(f"track_ids must be 1-D (one entry per gallery image), got shape {t.shape}")
    ng = len(t)
    t = _check_track_ids(t, ng, "gallery image")
    if r.size and (r.min() < 0 or r.max() >= ng):
        raise ValueError(f"ranking holds gallery index {int(r.min() if r.min() < 0 else r.max())}, "
                         f"outside [0, {ng}) given by track_ids")
    order, starts = _groups(t)
    track_members: List[np.ndarray] = np.split(order, starts[1:]) if len(order) else []
    track_slot = {int(t[m[0]]): i for i, m in enumerate(track_members)}

    out = np.empty((len(r), topk), dtype=np.int64)
    rank_pos = np.empty(ng, dtype=np.int64)
    for q, row in enumerate(r):
        rank_pos.fill(len(row))
        rank_pos[row[::-1]] = np.arange(len(row))[::-1]  # first occurrence wins
        seen = np.zeros(ng, dtype=bool)
        picked: List[int] = []
        for idx in row:
            if seen[idx]:
                continue
            if t[idx] < 0:
                group = np.array([idx])
            else:
                m = track_members[track_slot[int(t[idx])]]
                group = m[np.argsort(rank_pos[m], kind="stable")]
            seen[group] = True
            picked.extend(group.tolist())
            if len(picked) >= topk:
                break
        if len(picked) < topk:
            raise ValueError(f"query row {q}: only {len(picked)} distinct gallery images reachable, "
                             f"need topk={topk}")
        out[q] = picked[:topk]
    return out
