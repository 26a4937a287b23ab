"""Centroid triplet loss (CTL; Wieczorek et al., "On the Unreasonable Effectiveness of Centroids in
Image Retrieval", ICONIP 2021) as the ``centroid`` loss term.

For each anchor ``f`` of identity ``y`` in the batch the positive is the centroid of the *other*
images of ``y`` in the batch (the anchor is left out of its own centroid) and the negative is the
nearest centroid of another identity (the mean of all its batch images)::

    L = mean_anchors max(d(f, c_pos) - d(f, c_neg) + LOSS.CENTROID_MARGIN, 0)

with ``d`` euclidean or cosine (``LOSS.CENTROID_DISTANCE``). Unlike centroids-reid, the batch is
counted in images (``SOLVER.IMS_PER_BATCH`` = P x K, our sampler's convention), an identity with a
single image in the batch is skipped (its anchors have no positive centroid; the skipped anchors
are counted in the log) instead of failing an assert, and a sampler with K < 2 is refused up front.
"""
from __future__ import annotations

import logging
from typing import Tuple

import torch
import torch.nn.functional as F

from ..config import add_config
from .losses import LossConfigError, LossTerm, register_loss_term

__all__ = ["CENTROID_DISTANCES", "CentroidTripletLoss", "centroid_distances"]

logger = logging.getLogger("global_model.train")

CENTROID_DISTANCES = ("euclidean", "cosine")
_LOG_EVERY = 200  # batches with skipped anchors between two log lines (the first one is logged)


@add_config("centroid", shared=True)
def add_centroid_config(cfg) -> None:
    """``LOSS.CENTROID_*``: off unless a config sets the weight (centroids-reid uses 1 and margin 0.5)."""
    cfg.LOSS.CENTROID_WEIGHT = 0.0
    cfg.LOSS.CENTROID_MARGIN = 0.5
    cfg.LOSS.CENTROID_DISTANCE = "euclidean"  # euclidean | cosine


def _distance(x: torch.Tensor, c: torch.Tensor, kind: str) -> torch.Tensor:
    """Row-wise distances between ``x`` (N×D) and ``c`` (N×M×D or N×D broadcast against x)."""
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(x, c, dim=-1, eps=1e-12)
    return (x - c).pow(2).sum(-1).clamp(min=1e-12).sqrt()


def centroid_distances(feats: torch.Tensor, pids: torch.Tensor,
                       kind: str = "euclidean") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per anchor: distance to its positive centroid (the other images of its id), distance to the
    nearest other-identity centroid, and which anchors have both (an own-id image besides themselves
    and another identity in the batch)."""
    ids, inverse, counts = torch.unique(pids, return_inverse=True, return_counts=True)
    onehot = F.one_hot(inverse, len(ids)).to(feats.dtype)  # N×M
    sums = onehot.t() @ feats  # M×D
    centroids = sums / counts[:, None].to(feats.dtype)
    own = counts[inverse]
    valid = (own >= 2) & (len(ids) >= 2)
    others = (own - 1).clamp(min=1).to(feats.dtype)[:, None]
    positive = (sums[inverse] - feats) / others  # the anchor left out of its own centroid
    d_pos = _distance(feats, positive, kind)
    d_all = _distance(feats[:, None, :], centroids[None, :, :], kind)  # N×M
    d_neg = d_all.masked_fill(onehot.bool(), float("inf")).min(1).values
    return d_pos, d_neg, valid


@register_loss_term("centroid")
class CentroidTripletLoss(LossTerm):
    """The centroid triplet loss on ``triplet_feats`` (the pre-BNNeck vector, as centroids-reid)."""

    weight_key, output_key, order = "LOSS.CENTROID_WEIGHT", "triplet_feats", 500

    def __init__(self, margin: float = 0.5, distance: str = "euclidean"):
        super().__init__()
        if margin < 0:
            raise LossConfigError(f"LOSS.CENTROID_MARGIN must be >= 0, got {margin}")
        if distance not in CENTROID_DISTANCES:
            raise LossConfigError(f"LOSS.CENTROID_DISTANCE must be one of {', '.join(CENTROID_DISTANCES)}, "
                                  f"got {distance!r}")
        self.margin, self.distance = float(margin), distance
        self.skipped_anchors = 0  # anchors left out so far (their identity had one image in the batch)
        self._skipping_batches = 0

    @classmethod
    def from_config(cls, cfg, num_classes: int, feat_dim: int) -> "CentroidTripletLoss":
        k = cfg.DATALOADER.NUM_INSTANCE
        if k < 2:
            raise LossConfigError(
                f"LOSS.CENTROID_WEIGHT > 0 needs DATALOADER.NUM_INSTANCE (K) >= 2, got {k}: an anchor's positive "
                f"is the centroid of the other K-1 images of its identity in the batch, and with K = 1 there are none")
        return cls(cfg.LOSS.CENTROID_MARGIN, cfg.LOSS.CENTROID_DISTANCE)

    def forward(self, feats: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        d_pos, d_neg, valid = centroid_distances(feats, pids, self.distance)
        skipped = int((~valid).sum())
        if skipped:
            self._note_skipped(skipped, len(pids))
        if not bool(valid.any()):
            return feats.sum() * 0.0
        return F.relu(d_pos[valid] - d_neg[valid] + self.margin).mean()

    def _note_skipped(self, skipped: int, total: int) -> None:
        self.skipped_anchors += skipped
        self._skipping_batches += 1
        if self._skipping_batches % _LOG_EVERY == 1:
            logger.info("centroid loss: %d of %d anchors in this batch skipped (their identity has a single image "
                        "in the batch, or the batch has one identity); %d skipped so far", skipped, total,
                        self.skipped_anchors)
