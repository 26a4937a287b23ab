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

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from post_processing.distance import pairwise_distance
from post_processing.features import l2_normalize
from post_processing.errors import ReidError

FUSIONS = ("concat", "distance")
SIDES = ("query", "gallery", "train")


class FusionError(ReidError, ValueError):
    """Bad fusion settings (unknown method, bad weights)."""


@dataclass
class Block:
    """Features one distance is computed on; ``weight`` multiplies that distance in the fusion."""

    name: str
    weight: float
    query: np.ndarray
    gallery: np.ndarray
    train: Optional[np.ndarray] = None


def normalize_weights(models: Sequence[str], weights: Optional[Mapping[str, float]] = None) -> Dict[str, float]:
    """Weights for ``models`` scaled to sum 1; models without a weight get 1, unknown names are refused."""
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(models))
    if unknown:
        raise FusionError(f"weights given for {', '.join(unknown)} which are not among the models ({', '.join(models)})")
    raw = {m: float(weights.get(m, 1.0)) for m in models}
    bad = [f"{m}={w}" for m, w in raw.items() if not np.isfinite(w) or w < 0]
    if bad:
        raise FusionError(f"weights must be finite and >= 0: {', '.join(bad)}")
    total = sum(raw.values())
    if total <= 0:
        raise FusionError(f"at least one model needs a weight > 0 (models: {', '.join(models)})")
    return {m: w / total for m, w in raw.items()}


def make_blocks(models: Sequence[str], feats: Mapping[str, Mapping[str, np.ndarray]],
                weights: Optional[Mapping[str, float]] = None, fusion: str = "concat") -> List[Block]:
    """Blocks for ``fusion`` from ``feats[side][model]`` arrays (sides ``query``, ``gallery``, optional ``train``).

    Models with weight 0 are left out.
    """
    if fusion not in FUSIONS:
        raise FusionError(f"unknown fusion {fusion!r}; expected one of {', '.join(FUSIONS)}")
    w = normalize_weights(models, weights)
    active = [m for m in models if w[m] > 0]
    sides = [s for s in SIDES if s in feats]

    def unit(side: str, m: str) -> np.ndarray:
        return l2_normalize(np.asarray(feats[side][m], dtype=np.float32))

    if fusion == "concat":
        cat = {s: np.concatenate([np.sqrt(w[m]) * unit(s, m) for m in active], axis=1).astype(np.float32)
               for s in sides}
        return [Block("+".join(active), 1.0, cat["query"], cat["gallery"], cat.get("train"))]
    return [Block(m, w[m], unit("query", m), unit("gallery", m), unit("train", m) if "train" in sides else None)
            for m in active]


def block_distance(blocks: Sequence[Block], a: str, b: str, metric: str = "euclidean") -> np.ndarray:
    """Fused distance between side ``a`` and side ``b`` (``query``/``gallery``) of every block."""
    out = None
    for blk in blocks:
        d = pairwise_distance(getattr(blk, a), getattr(blk, b), metric)
        if blk.weight != 1.0:
            d *= np.float32(blk.weight)
        out = d if out is None else np.add(out, d, out=out)
    return out


def concat_equivalent(blocks: Sequence[Block], side: str) -> np.ndarray:
    """One matrix for ``side`` whose squared euclidean distances are the weighted sum of the blocks'.

    Used where a step needs a single feature set (top-K re-ranking from features); for ``concat``
    fusion it is the fused block itself.
    """
    if len(blocks) == 1 and blocks[0].weight == 1.0:
        return getattr(blocks[0], side)
    return np.concatenate([np.sqrt(b.weight) * getattr(b, side) for b in blocks], axis=1).astype(np.float32)
