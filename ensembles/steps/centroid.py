"""``centroid``: query-to-centroid distances (CTL's retrieval with centroids), scored per image.

Groups are gallery identities (the paper's setting: it uses the gallery's labels) or AIC tracks
(``test_track.txt``: legitimate at test time, the tracker gives them), optionally split by camera;
see :mod:`post_processing.centroid`.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from post_processing.centroid import centroid_distances, group_ids

from ..pipeline import DISTANCES, Param, PipelineError, State, register_step

GROUPINGS = ("auto", "id", "track")


@register_step("centroid", DISTANCES, 5,
               "compare queries with gallery centroids (per identity or track); each gallery image takes its "
               "centroid's distance",
               group=Param(str, "auto", "what a centroid averages: id (gallery labels), track (test_track.txt), "
                                        "auto (id when the gallery is labelled, else track)", choices=GROUPINGS),
               per_camera=Param(bool, False, "one centroid per group and camera"),
               exclude_query_camera=Param(bool, False, "build each query's centroids without the images of its "
                                                       "own camera"),
               normalize=Param(bool, True, "L2-normalise the centroids"))
def _centroid(state: State, p: Dict[str, Any]) -> None:
    lab = state.labels
    keys, kind = _group_keys(state, p["group"])
    cams = lab.g_camids if p["per_camera"] or p["exclude_query_camera"] else None
    if cams is not None and ((lab.g_camids < 0).any() or (p["exclude_query_camera"] and (lab.q_camids < 0).any())):
        raise PipelineError("per_camera / exclude_query_camera need the camera of every query and gallery image, "
                            "but the dataset lacks some (AIC20: query_label.xml / test_label.xml)")
    groups = group_ids(keys, lab.g_camids if p["per_camera"] else None)
    fused = None
    for blk in state.blocks:
        d = centroid_distances(blk.query, blk.gallery, groups, state.metric, lab.q_camids, lab.g_camids,
                               p["exclude_query_camera"], p["normalize"])
        if blk.weight != 1.0:
            d *= np.float32(blk.weight)
        fused = d if fused is None else fused + d
    added = state.added_distances() if state.dist is not None else 0.0
    state.set_distances(fused + added)
    state.notes.append(f"centroid: {int(groups.max()) + 1 if len(groups) else 0} {kind} centroids over "
                       f"{state.num_gallery} gallery images")


def _group_keys(state: State, group: str):
    """``(keys, "id" | "track")``: the gallery labels or tracks the centroids average over."""
    lab = state.labels
    labelled = lab.has_gt and (lab.g_pids >= 0).all()
    if group == "id" or (group == "auto" and labelled):
        if not labelled:
            raise PipelineError("group id needs gallery identities, but the gallery is not labelled; use group track")
        return lab.g_pids, "id"
    tracks = lab.g_tracks
    if tracks is None or (tracks < 0).all():
        raise PipelineError("needs gallery identities or tracks (AIC20: test_track.txt), but the dataset has neither")
    return tracks, "track"
