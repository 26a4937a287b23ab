"""Centroid retrieval (CTL, Wieczorek et al. 2021): queries are compared with the mean feature of a
gallery group (an identity, an AIC track, optionally split by camera) instead of single images.

Scores stay per image: every gallery image takes the distance of its group's centroid, so the
usual per-image mAP/CMC apply and the numbers stay comparable with the other rows (the original
evaluates one centroid per identity, centroids-reid #26). With ``exclude_query_camera`` a query
from camera c is compared with centroids built from the group's images of other cameras only (the
camera filter centroids-reid meant, #21/#41); a group with no image outside c keeps its images'
own distances. numpy only.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .distance import pairwise_distance
from .features import l2_normalize

__all__ = ["centroid_distances", "centroid_features", "group_ids"]


def group_ids(keys: np.ndarray, camids: Optional[np.ndarray] = None) -> np.ndarray:
    """Dense group ids (0..G-1) of gallery images from ``keys`` (identity or track ids; < 0: no group,
    returned as -1), split by camera when ``camids`` is given."""
    keys = np.asarray(keys, dtype=np.int64)
    if keys.ndim != 1:
        raise ValueError(f"group keys must be 1-D (one per gallery image), got shape {keys.shape}")
    out = np.full(len(keys), -1, dtype=np.int64)
    grouped = keys >= 0
    if camids is None:
        columns = keys[grouped][:, None]
    else:
        camids = np.asarray(camids, dtype=np.int64)
        if camids.shape != keys.shape:
            raise ValueError(f"camids must have one entry per gallery image ({len(keys)}), got shape {camids.shape}")
        columns = np.stack([keys[grouped], camids[grouped]], axis=1)
    if len(columns):
        out[grouped] = np.unique(columns, axis=0, return_inverse=True)[1].reshape(-1)
    return out


def centroid_features(gf: np.ndarray, groups: np.ndarray, members: Optional[np.ndarray] = None,
                      normalize: bool = True) -> np.ndarray:
    """Each gallery row replaced by the mean of its group's rows (restricted to ``members`` when
    given; rows of a group with no member, and rows with group -1, keep their own feature), then
    L2-normalised when ``normalize``. Returns (G_images, D) float32."""
    g = np.asarray(gf, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    if g.ndim != 2 or groups.shape != (len(g),):
        raise ValueError(f"need gallery features N×D and one group id per row, got {g.shape} and {groups.shape}")
    use = groups >= 0 if members is None else (groups >= 0) & np.asarray(members, dtype=bool)
    n_groups = int(groups.max()) + 1 if len(groups) and groups.max() >= 0 else 0
    sums = np.zeros((n_groups, g.shape[1]))
    np.add.at(sums, groups[use], g[use])
    counts = np.bincount(groups[use], minlength=n_groups)
    out = g.copy()
    has = (groups >= 0) & (counts[np.maximum(groups, 0)] > 0) if n_groups else np.zeros(len(g), bool)
    out[has] = sums[groups[has]] / counts[groups[has]][:, None]
    out = out.astype(np.float32)
    return l2_normalize(out) if normalize else out


def centroid_distances(qf: np.ndarray, gf: np.ndarray, groups: np.ndarray, metric: str = "euclidean",
                       q_camids: Optional[np.ndarray] = None, g_camids: Optional[np.ndarray] = None,
                       exclude_query_camera: bool = False, normalize: bool = True) -> np.ndarray:
    """(Q, G) distances from each query to the centroid of each gallery image's group (see the module
    docstring); ``groups`` from :func:`group_ids`."""
    qf = np.asarray(qf, dtype=np.float32)
    if not exclude_query_camera:
        return pairwise_distance(qf, centroid_features(gf, groups, normalize=normalize), metric)
    if q_camids is None or g_camids is None:
        raise ValueError("exclude_query_camera needs the query and gallery camera ids")
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    if q_camids.shape != (len(qf),) or g_camids.shape != (len(gf),):
        raise ValueError(f"need one camera id per query ({len(qf)}) and gallery image ({len(gf)}), got "
                         f"{q_camids.shape} and {g_camids.shape}")
    out = np.empty((len(qf), len(gf)), dtype=np.float32)
    for cam in np.unique(q_camids):
        rows = np.flatnonzero(q_camids == cam)
        out[rows] = pairwise_distance(qf[rows], centroid_features(gf, groups, g_camids != cam, normalize), metric)
    return out
