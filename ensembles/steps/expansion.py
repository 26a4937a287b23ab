"""``dba`` and ``qe``: database-side augmentation and query expansion of the feature blocks."""
from __future__ import annotations

from typing import Any, Dict

from post_processing.query_expansion import alpha_query_expansion, average_query_expansion, database_augmentation

from ..pipeline import FEATURES, Param, State, register_step


@register_step("dba", FEATURES, 30, "database-side augmentation: each gallery feature + its k nearest gallery features",
               flag_params=("k",),
               k=Param(int, 6, "neighbours", minimum=0))
def _dba(state: State, p: Dict[str, Any]) -> None:
    for blk in state.blocks:
        blk.gallery = database_augmentation(blk.gallery, p["k"])


@register_step("qe", FEATURES, 40, "query expansion with the k nearest gallery features (alpha: alpha-QE, null: average)",
               flag_params=("k",),
               k=Param(int, 6, "neighbours", minimum=0),
               alpha=Param(float, None, "alpha-QE exponent; null for average QE", minimum=0, optional=True))
def _qe(state: State, p: Dict[str, Any]) -> None:
    for blk in state.blocks:
        if p["alpha"] is None:
            blk.query = average_query_expansion(blk.query, blk.gallery, p["k"])
        else:
            blk.query = alpha_query_expansion(blk.query, blk.gallery, p["k"], p["alpha"])
