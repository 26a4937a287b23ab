"""Camera terms on the query×gallery distances: ``subtract`` (an auxiliary model's distance) and
``camera_penalty`` (same-camera pairs pushed away, remembered for camera-aware re-ranking)."""
from __future__ import annotations

from typing import Any, Dict

from post_processing.camera import subtract_model_distance
from post_processing.distance import METRICS

from ..pipeline import DISTANCES, Param, PipelineError, State, register_step


@register_step("subtract", DISTANCES, 10,
               "subtract weight x the distance of an auxiliary model (e.g. a camera or orientation model)",
               flag_params=("model", "weight"), repeatable=True, aux_features="model",
               model=Param(str, None, "auxiliary feature set (query_<model>.pkl / gallery_<model>.pkl)", required=True),
               weight=Param(float, 0.1, "weight of the auxiliary distance", minimum=0),
               metric=Param(str, "sqeuclidean", "distance of the auxiliary features", choices=METRICS))
def _subtract(state: State, p: Dict[str, Any]) -> None:
    if p["model"] not in state.aux:
        raise PipelineError(f"auxiliary features {p['model']!r} were not loaded")
    q, g = state.aux[p["model"]]
    state.set_distances(subtract_model_distance(state.distances(), q, g, p["weight"], p["metric"]))


@register_step("camera_penalty", DISTANCES, 20, "add a penalty to query/gallery pairs from the same camera",
               flag_params=("penalty",),
               penalty=Param(float, 1.0, "added distance (fused distances of unit features are at most 2, "
                                         "4 squared, so 10 already puts every same-camera image last)",
                             minimum=0, maximum=10))
def _camera_penalty(state: State, p: Dict[str, Any]) -> None:
    lab = state.labels
    if (lab.q_camids < 0).all() or (lab.g_camids < 0).all():
        raise PipelineError("needs camera ids of query and gallery images, but the dataset has none "
                            "(AIC20: query_label.xml / test_label.xml); use 'subtract' with a camera model instead")
    state.penalise_same_camera(p["penalty"])
