"""Camera terms on a distance matrix: same-camera penalty and camera/orientation model subtraction.

Both work on any (rows × cols) matrix (query×gallery, query×query, gallery×gallery), so they can
be applied before k-reciprocal re-ranking as well as to the final query×gallery distances.
"""
from __future__ import annotations

import numpy as np

from .distance import pairwise_distance
from .features import l2_normalize


def _matrix(distmat, what: str = "distmat") -> np.ndarray:
    d = np.asarray(distmat)
    if d.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array, got shape {d.shape}")
    return np.array(d, dtype=np.float32)


def same_camera_penalty(distmat, q_camids, g_camids, penalty: float = 1.0) -> np.ndarray:
    """Add ``penalty`` where the row image and the column image come from the same camera.

    AIC 2019 style: a vehicle seen again by the query's own camera is usually the same pass (or a
    look-alike), so cross-camera matches are preferred. q_camids: (rows,), g_camids: (cols,) ints,
    given or predicted by a camera model; ``-1`` = unknown, never penalised. penalty: added
    distance (default 1.0, half the euclidean range of unit features, so same-camera images drop
    behind close cross-camera ones but keep their order). Returns float32.
    """
    d = _matrix(distmat)
    q = np.asarray(q_camids)
    g = np.asarray(g_camids)
    if q.shape != (d.shape[0],) or g.shape != (d.shape[1],):
        raise ValueError(f"camids must match distmat {d.shape}: got q_camids {q.shape}, g_camids {g.shape}")
    same = (q[:, None] == g[None, :]) & (q[:, None] >= 0) & (g[None, :] >= 0)
    d[same] += np.float32(penalty)
    return d


def subtract_distance(distmat, aux_distmat, weight: float = 0.1) -> np.ndarray:
    """VOC-ReID (AIC 2020) camera/orientation term: ``distmat − weight · aux_distmat``.

    aux_distmat comes from a model trained to tell cameras (or orientations) apart; subtracting it
    favours pairs that look like *different* cameras/viewpoints, which the ReID model tends to
    under-rank. weight: default 0.1 as in the winning code. Results may be negative. Returns float32.
    """
    d = _matrix(distmat)
    a = _matrix(aux_distmat, "aux_distmat")
    if a.shape != d.shape:
        raise ValueError(f"aux_distmat shape {a.shape} does not match distmat shape {d.shape}")
    d -= np.float32(weight) * a
    return d


def subtract_model_distance(distmat, q_aux, g_aux, weight: float = 0.1, metric: str = "sqeuclidean") -> np.ndarray:
    """``subtract_distance`` with the aux distances built from camera/orientation model features.

    q_aux: (rows, D) and g_aux: (cols, D) aux features, L2-normalised here; metric: as in
    ``distance.pairwise_distance`` (default squared euclidean, as VOC-ReID). weight: default 0.1.
    """
    q = np.asarray(q_aux)
    g = np.asarray(g_aux)
    if q.ndim != 2 or g.ndim != 2:
        raise ValueError(f"q_aux and g_aux must be 2-D (N×D), got shapes {q.shape} and {g.shape}")
    aux = pairwise_distance(l2_normalize(q.astype(np.float32)), l2_normalize(g.astype(np.float32)), metric)
    return subtract_distance(distmat, aux, weight)
