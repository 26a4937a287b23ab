"""Evaluation of a loaded dataset under the protocol it declares (torch-free).

One place that turns records into the protocol's inputs: training validation scores features with
:func:`evaluate_features`, the ensemble builds its labels with :func:`evaluation_cameras`.
Datasets without camera ids (``folder``/``csv`` without them) would lose every match to the
Market rule (same id and same camera is junk); they get cameras that make the rule remove only
the query image itself from the gallery, and a note that says so.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from post_processing.distance import pairwise_distance
from post_processing.protocols import evaluate_protocol

from ..records import ImageRecord
from . import DatasetSplits

NO_CAMERAS_NOTE = ("no camera ids: the evaluation removes only the query image itself from its gallery "
                   "(not the other images of its camera)")


def evaluation_cameras(query: Sequence[ImageRecord],
                       gallery: Sequence[ImageRecord]) -> Tuple[np.ndarray, np.ndarray, Optional[str]]:
    """``(q_camids, g_camids, note)`` for the protocol. With camera ids they are the records' own and
    ``note`` is None; without any (every camid < 0), query i gets camera i, a gallery image that is
    the same file as query i gets camera i too, every other gallery image camera -1."""
    q_cams = np.asarray([r.camid for r in query], np.int64)
    g_cams = np.asarray([r.camid for r in gallery], np.int64)
    if (q_cams >= 0).any() or (g_cams >= 0).any():
        return q_cams, g_cams, None
    first: Dict[str, int] = {}
    for i, r in enumerate(query):
        first.setdefault(r.path, i)
    q_cams = np.asarray([first[r.path] for r in query], np.int64)
    g_cams = np.asarray([first.get(r.path, -1) for r in gallery], np.int64)
    return q_cams, g_cams, NO_CAMERAS_NOTE


def evaluate_features(ds: DatasetSplits, query: List[ImageRecord], gallery: List[ImageRecord], qf: np.ndarray,
                      gf: np.ndarray, metric: str = "euclidean") -> Tuple[dict, List[str]]:
    """``(scores, notes)`` of query/gallery features under ``ds``'s protocol (its name and options).

    ``vehicleid`` scores the whole test set (query + gallery of the loaded draw) over its draws."""
    notes = list(ds.notes)
    if ds.protocol == "vehicleid":
        records = list(query) + list(gallery)
        feats = np.concatenate([qf, gf])
        pids = np.asarray([r.pid for r in records])
        cams = np.zeros(len(records), np.int64)
        res = evaluate_protocol("vehicleid", pairwise_distance(feats, feats, metric), pids, pids, cams, cams,
                                names=[r.name for r in records], **ds.protocol_options)
        return res, notes
    q_cams, g_cams, note = evaluation_cameras(query, gallery)
    if note:
        notes.append(note)
    res = evaluate_protocol(ds.protocol, pairwise_distance(qf, gf, metric), np.asarray([r.pid for r in query]),
                            np.asarray([r.pid for r in gallery]), q_cams, g_cams, **ds.protocol_options)
    return res, notes
