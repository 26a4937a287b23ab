"""Fusion of several models' features into the blocks the pipeline steps work on.

A *block* is one feature space with a weight; the fused query×gallery distance is the weighted sum
of the blocks' distances. The two fusions only differ in how many blocks they make:

- ``concat``: one block, the concatenation of each model's L2-normalised features scaled by
  ``sqrt(w_m)`` (weights normalised to sum 1). The result has unit rows and its cosine similarity is
  the weighted mean of the models' cosine similarities; steps such as query expansion then see
  one fused neighbourhood.
- ``distance``: one block per model; steps run on each model's features separately and the fused
  distance is ``sum_m w_m * d_m``.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from post_processing.distance import pairwise_distance
from post_processing.features import l2_normalize
from post_processing.errors import ReidError

FUSIONS = ("concat", "distance")
SIDES = ("query", "gallery", "train")


class FusionError(ReidError, ValueError):
    """Bad fusion settings (unknown method, bad or unparsable weights)."""


@dataclass
class FeatureBlock:
    """Features one distance is computed on; ``weight`` multiplies that distance in the fusion."""

    name: str
    weight: float
    query: np.ndarray
    gallery: np.ndarray
    train: Optional[np.ndarray] = None


def check_weights(models: Optional[Sequence[str]], weights: Mapping[str, Any]) -> Dict[str, float]:
    """Every fusion-weight rule, in one place: each weight a finite number >= 0 and, when ``models``
    is given, only models' weights and at least one > 0. Returns the weight of every model (1 when
    not given) as floats, or the given weights when ``models`` is None."""
    for m, w in weights.items():
        if not (isinstance(w, numbers.Real) and not isinstance(w, bool) and math.isfinite(w) and w >= 0):
            raise FusionError(f"weight of {m!r} must be a number >= 0, got {w!r}")
    if models is None:
        return {m: float(w) for m, w in weights.items()}
    unknown = sorted(set(weights) - set(models))
    if unknown:
        raise FusionError(f"weights given for {', '.join(map(repr, unknown))}, not among the models "
                          f"({', '.join(models)})")
    raw = {m: float(weights.get(m, 1.0)) for m in models}
    if sum(raw.values()) <= 0:
        raise FusionError(f"at least one model needs a weight > 0 (models: {', '.join(models)})")
    return raw


def normalize_weights(models: Sequence[str], weights: Optional[Mapping[str, float]] = None) -> Dict[str, float]:
    """Weights for ``models`` scaled to sum 1 (see :func:`check_weights`)."""
    raw = check_weights(models, dict(weights or {}))
    total = sum(raw.values())
    return {m: w / total for m, w in raw.items()}


def parse_weights(text: str, models: Sequence[str]) -> Dict[str, float]:
    """``--weights`` text: ``1,0.5,2`` (one per model, in order) or ``a=1,b=0.5``; values checked later."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        if any("=" in p for p in parts):
            raise ValueError("mixes name=value and plain values")
        if len(parts) != len(models):
            raise ValueError(f"has {len(parts)} values for {len(models)} models ({', '.join(models)})")
        return {m: float(v) for m, v in zip(models, parts)}
    except ValueError as e:
        raise FusionError(f"{text!r}: {e}; expected 1,0.5 (one per model) or name=1,name2=0.5") from None


def make_blocks(models: Sequence[str], feats: Mapping[str, Mapping[str, np.ndarray]],
                weights: Optional[Mapping[str, float]] = None, fusion: str = "concat") -> List[FeatureBlock]:
    """Blocks for ``fusion`` from ``feats[side][model]`` arrays (sides ``query``, ``gallery``, optional ``train``).

    Models with weight 0 are left out.
    """
    if fusion not in FUSIONS:
        raise FusionError(f"unknown fusion {fusion!r}; expected one of {', '.join(FUSIONS)}")
    w = normalize_weights(models, weights)
    active = [m for m in models if w[m] > 0]
    sides = [s for s in SIDES if s in feats]

    def unit(side: str, m: str) -> np.ndarray:
        try:
            return l2_normalize(np.asarray(feats[side][m], dtype=np.float32))
        except ValueError as e:
            raise FusionError(f"model {m!r}, {side} features: {e}") from None

    if fusion == "concat":
        cat = {s: np.concatenate([np.sqrt(w[m]) * unit(s, m) for m in active], axis=1).astype(np.float32)
               for s in sides}
        return [FeatureBlock("+".join(active), 1.0, cat["query"], cat["gallery"], cat.get("train"))]
    return [FeatureBlock(m, w[m], unit("query", m), unit("gallery", m), unit("train", m) if "train" in sides else None)
            for m in active]


def block_distance(blocks: Sequence[FeatureBlock], a: str, b: str, metric: str = "euclidean") -> np.ndarray:
    """Fused distance between side ``a`` and side ``b`` (``query``/``gallery``) of every block."""
    out = None
    for blk in blocks:
        d = pairwise_distance(getattr(blk, a), getattr(blk, b), metric)
        if blk.weight != 1.0:
            d *= np.float32(blk.weight)
        out = d if out is None else np.add(out, d, out=out)
    return out


def concat_equivalent(blocks: Sequence[FeatureBlock], side: str) -> np.ndarray:
    """One matrix for ``side`` whose squared euclidean distances are the weighted sum of the blocks'.

    Used where a step needs a single feature set (top-K re-ranking from features); for ``concat``
    fusion it is the fused block itself.
    """
    if len(blocks) == 1 and blocks[0].weight == 1.0:
        return getattr(blocks[0], side)
    return np.concatenate([np.sqrt(b.weight) * getattr(b, side) for b in blocks], axis=1).astype(np.float32)
