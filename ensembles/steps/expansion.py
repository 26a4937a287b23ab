"""``dba`` and ``qe``: database-side augmentation and query expansion of the feature blocks.

Both are camera-aware (cross-camera neighbours only, :mod:`post_processing.query_expansion`) when
``camera_aware`` is true, or by default (``camera_aware`` unset) when the pipeline also has a
``camera_penalty`` step: a pipeline that pushes same-camera pairs apart should not pull a query
towards its own camera's look-alikes first (on the demo data plain QE before the penalty cost 7.5 mAP).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from post_processing.query_expansion import alpha_query_expansion, average_query_expansion, database_augmentation

from ..pipeline import FEATURES, Param, PipelineError, State, register_step

_CAMERA_AWARE = Param(bool, None, "cross-camera neighbours only (unset: when the pipeline has a camera_penalty step)",
                      optional=True, grid=(False, True))


def _cameras(state: State, step: str, p: Dict[str, Any]) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(query, gallery) camera ids when the step runs camera-aware, else (None, None)."""
    aware = p["camera_aware"]
    if aware is None:
        aware = "camera_penalty" in state.planned
    if not aware:
        return None, None
    lab = state.labels
    if (lab.q_camids < 0).any() or (lab.g_camids < 0).any():
        raise PipelineError(f"{step}: camera_aware needs the camera id of every query and gallery image "
                            f"(AIC20: query_label.xml / test_label.xml); set camera_aware: false")
    return lab.q_camids, lab.g_camids


@register_step("dba", FEATURES, 30, "database-side augmentation: each gallery feature + its k nearest gallery features",
               flag_params=("k",),
               k=Param(int, 6, "neighbours", minimum=0, grid=(1, 2, 4, 6)),
               alpha=Param(float, None, "weights max(cos, 0)^alpha; null for a plain average", minimum=0,
                           optional=True, grid=(None, 3.0)),
               camera_aware=_CAMERA_AWARE)
def _dba(state: State, p: Dict[str, Any]) -> None:
    _, g_cams = _cameras(state, "dba", p)
    for blk in state.blocks:
        blk.gallery = database_augmentation(blk.gallery, p["k"], p["alpha"], g_cams=g_cams)


@register_step("qe", FEATURES, 40, "query expansion with the k nearest gallery features (alpha: alpha-QE, null: average)",
               flag_params=("k",),
               k=Param(int, 6, "neighbours", minimum=0, grid=(1, 2, 4, 6)),
               alpha=Param(float, None, "alpha-QE exponent; null for average QE", minimum=0, optional=True,
                           grid=(None, 3.0)),
               camera_aware=_CAMERA_AWARE)
def _qe(state: State, p: Dict[str, Any]) -> None:
    q_cams, g_cams = _cameras(state, "qe", p)
    for blk in state.blocks:
        if p["alpha"] is None:
            blk.query = average_query_expansion(blk.query, blk.gallery, p["k"], q_cams=q_cams, g_cams=g_cams)
        else:
            blk.query = alpha_query_expansion(blk.query, blk.gallery, p["k"], p["alpha"], q_cams=q_cams, g_cams=g_cams)
