"""Steps that use the gallery tracks (AIC20 ``test_track.txt``): ``track_average`` (features),
``track_distance`` (distances) and ``track_expand`` (ranking)."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from post_processing.track import WEIGHTINGS, track_average, track_expand, track_group_distance

from ..pipeline import DISTANCES, FEATURES, RANKING, Param, PipelineError, State, register_step


@register_step("track_average", FEATURES, 20,
               "replace each gallery feature by the average of its track (test_track.txt)",
               weighting=Param(str, "inverse_distance", "how track members are weighted", choices=WEIGHTINGS,
                               aliases=("--track-weighting",)))
def _track_average(state: State, p: Dict[str, Any]) -> None:
    tracks = _gallery_tracks(state)
    for blk in state.blocks:
        blk.gallery = track_average(blk.gallery, tracks, p["weighting"])


@register_step("track_distance", DISTANCES, 40, "replace each gallery distance by the closest distance of its track")
def _track_distance(state: State, p: Dict[str, Any]) -> None:
    state.set_distances(track_group_distance(state.distances(), _gallery_tracks(state)))


@register_step("track_expand", RANKING, 10, "walk the ranking and insert whole tracks in order")
def _track_expand(state: State, p: Dict[str, Any]) -> None:
    ranking = state.rank(state.num_gallery if state.ranking is None else state.ranking.shape[1])
    state.ranking = np.asarray(track_expand(ranking, _gallery_tracks(state), topk=state.topk))
    state.dist = None


def _gallery_tracks(state: State) -> np.ndarray:
    tracks = state.labels.g_tracks
    if tracks is None or (tracks < 0).all():
        raise PipelineError("needs gallery tracks (AIC20: test_track.txt), but the dataset has none")
    return tracks
