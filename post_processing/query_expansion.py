"""Query expansion (average and α-weighted) and database-side augmentation (DBA).

Each step replaces a vector by a (weighted) sum of itself and its ``k`` most similar gallery vectors
(cosine similarity) and returns L2-normalised float32 rows. Defaults follow the AIC 2020 winning
code: top-6 neighbours, α = 3. Neighbours are searched ``block_rows`` rows at a time, so memory
stays at ``block_rows × len(gf)`` floats even for gallery×gallery (DBA) at AIC scale.

Camera-aware (``q_cams``/``g_cams`` given): only gallery vectors from another camera than the
expanded vector's are neighbours. Same-camera neighbours are mostly other vehicles sharing the
camera's background and colour cast, which pull the expanded vector towards exactly the look-alikes
a camera penalty pushes away; where fewer than ``k`` cross-camera vectors exist, fewer are added.
"""
from __future__ import annotations

import numpy as np

from .distance import pairwise_distance, topk_smallest
from .features import l2_normalize


def _unit_rows(x, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (N×D), got shape {x.shape}")
    return l2_normalize(np.asarray(x, dtype=np.float32))


def _check_k(k: int) -> int:
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    return int(k)


def _cameras(cams, n: int, what: str) -> np.ndarray:
    cams = np.asarray(cams).reshape(-1)
    if len(cams) != n:
        raise ValueError(f"{what} has {len(cams)} camera ids for {n} vectors")
    if (cams < 0).any():
        raise ValueError(f"{what}: camera-aware expansion needs every camera id, {int((cams < 0).sum())} are unknown")
    return cams


def _expand(queries: np.ndarray, gallery: np.ndarray, k: int, alpha, skip_self: bool, block_rows: int,
            q_cams=None, g_cams=None) -> np.ndarray:
    """Sum of each unit query and its top-``k`` unit gallery neighbours, weighted by max(sim, 0)^α.

    ``alpha=None`` gives every term weight 1. With ``skip_self`` the query is a gallery row itself
    (DBA): its own entry is found as a neighbour, so ``k + 1`` neighbours are taken and the query is
    not added a second time. With cameras, same-camera pairs are no neighbours (the module doc).
    """
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    aware = q_cams is not None
    if aware:
        q_cams, g_cams = _cameras(q_cams, len(queries), "query"), _cameras(g_cams, len(gallery), "gallery")
        skip_self = False  # a vector's own entry has its camera, so it is never a neighbour
    out = queries.copy()
    n_neigh = min(k + 1 if skip_self else k, len(gallery))
    if n_neigh == 0:
        return out
    for start in range(0, len(queries), block_rows):
        rows = queries[start:start + block_rows]
        dist = pairwise_distance(rows, gallery, "cosine")
        if aware:
            dist[q_cams[start:start + len(rows), None] == g_cams[None, :]] = np.inf
        idx = topk_smallest(dist, n_neigh)
        weights = np.ones(idx.shape, dtype=np.float32)
        if alpha is not None:
            sim = 1.0 - np.take_along_axis(dist, idx, axis=1)
            weights = np.power(np.maximum(sim, 0.0), alpha, dtype=np.float32)
        if aware:
            weights[~np.isfinite(np.take_along_axis(dist, idx, axis=1))] = 0.0
        expanded = np.zeros_like(rows) if skip_self else rows.copy()
        for j in range(n_neigh):  # one neighbour at a time: never a block × k × D temporary
            expanded += weights[:, j:j + 1] * gallery[idx[:, j]]
        out[start:start + len(rows)] = expanded
    return l2_normalize(out)


def _check_cams(q_cams, g_cams) -> None:
    if (q_cams is None) != (g_cams is None):
        raise ValueError("camera-aware expansion needs both q_cams and g_cams")


def average_query_expansion(qf, gf, k: int = 6, block_rows: int = 1024, q_cams=None, g_cams=None) -> np.ndarray:
    """Average query expansion (AQE): q' = normalise(q + Σ top-k gallery neighbours of q).

    qf: (nq, D) query features; gf: (ng, D) gallery features (any scale; both are L2-normalised
    first). k: neighbours added (default 6; 0 only normalises). q_cams/g_cams: camera ids for
    cross-camera neighbours only. Returns (nq, D) float32 unit rows.
    """
    k = _check_k(k)
    _check_cams(q_cams, g_cams)
    return _expand(_unit_rows(qf, "qf"), _unit_rows(gf, "gf"), k, None, False, block_rows, q_cams, g_cams)


def alpha_query_expansion(qf, gf, k: int = 6, alpha: float = 3.0, block_rows: int = 1024,
                          q_cams=None, g_cams=None) -> np.ndarray:
    """α-weighted query expansion (αQE): q' = normalise(q + Σ_top-k max(cos(q, g), 0)^α · g).

    The query itself has weight 1 (= its similarity to itself). k: neighbours (default 6);
    alpha: sharpness (default 3; 0 equals AQE); q_cams/g_cams as in AQE. Returns (nq, D) float32 unit rows.
    """
    k = _check_k(k)
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    _check_cams(q_cams, g_cams)
    return _expand(_unit_rows(qf, "qf"), _unit_rows(gf, "gf"), k, float(alpha), False, block_rows, q_cams, g_cams)


def database_augmentation(gf, k: int = 6, alpha=None, block_rows: int = 1024, g_cams=None) -> np.ndarray:
    """Database-side augmentation: each gallery vector becomes the normalised sum of itself and its
    ``k`` nearest other gallery vectors (with ``g_cams``: nearest from other cameras).

    alpha: ``None`` (default) for a plain average, or a number for weights max(cos, 0)^α as in αQE.
    k: neighbours besides the vector itself (default 6). Returns (ng, D) float32 unit rows.
    """
    k = _check_k(k)
    if alpha is not None and alpha < 0:
        raise ValueError(f"alpha must be >= 0 or None, got {alpha}")
    g = _unit_rows(gf, "gf")
    return _expand(g, g, k, None if alpha is None else float(alpha), True, block_rows, g_cams, g_cams)
