"""SAN's objective: the ReID terms, L1 reconstruction and the decoder-feature triplet, in one loss.

The published code ran two backward passes per step (ReID, then texture through the retained
encoder graph after the optimizer had already changed it: an error on current PyTorch) and took
its decoder triplets at positions hard-coded for 4 images per identity, one of them with an anchor
that is not the positive's. Here everything is one sum, back-propagated once:

    total = reid + REC_WEIGHT · L1(decoded, target) + TR_WEIGHT · Σ_stages decoder_triplet(stage map)

``decoder_triplet`` works on any P×K batch: the distance between two images is the MSE between
their decoder maps, and every anchor takes its farthest same-id image and nearest other-id image
(batch-hard), with a hinge at ``TR_MARGIN``; anchors without a positive or a negative are skipped.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling.losses import build_loss, pair_masks
from .config import SANConfigError

__all__ = ["SANLoss", "decoder_triplet", "hardest_pairs", "map_distances"]


def map_distances(maps: torch.Tensor) -> torch.Tensor:
    """B×B mean squared difference between the B maps (any shape per row), ≥ 0."""
    x = maps.flatten(1)
    sq = (x * x).sum(1)
    return ((sq[:, None] + sq[None, :] - 2.0 * (x @ x.t())) / x.shape[1]).clamp(min=0.0)


def hardest_pairs(dist: torch.Tensor, pids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per anchor: the index of its farthest positive, of its nearest negative, and whether it has both."""
    pos, neg = pair_masks(pids)
    valid = pos.any(1) & neg.any(1)
    return (dist.masked_fill(~pos, float("-inf")).argmax(1), dist.masked_fill(~neg, float("inf")).argmin(1),
            valid)


def decoder_triplet(maps: torch.Tensor, pids: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet hinge on MSE distances between the rows of one decoder stage's maps."""
    dist = map_distances(maps)
    ap, an, valid = hardest_pairs(dist.detach(), pids)
    if not bool(valid.any()):
        return maps.sum() * 0.0
    rows = torch.arange(len(pids), device=maps.device)
    return F.relu(dist[rows, ap] - dist[rows, an] + margin)[valid].mean()


class SANLoss(nn.Module):
    """The SAN objective with the ``(outputs, batch) -> (total, parts)`` loss contract.

    ``outputs``: the model's ReID outputs plus ``decoded`` (B×3×H×W in [0, 1]) and
    ``decoder_maps`` (the four stage maps); ``batch``: ``pids`` and ``target`` (B×3×H×W in [0, 1]).
    ``parts`` holds the unweighted ReID terms, ``rec`` and ``dtri``.
    """

    def __init__(self, cfg, num_classes: int, feat_dim: int):
        super().__init__()
        s = cfg.MODEL.SAN
        for key in ("REC_WEIGHT", "TR_WEIGHT", "TR_MARGIN"):
            if s[key] < 0:
                raise SANConfigError(f"MODEL.SAN.{key} must be >= 0, got {s[key]}")
        self.rec_weight, self.tr_weight, self.margin = float(s.REC_WEIGHT), float(s.TR_WEIGHT), float(s.TR_MARGIN)
        self.reid = build_loss(cfg, num_classes, feat_dim)

    def forward(self, outputs: dict, batch: dict) -> Tuple[torch.Tensor, Dict[str, float]]:
        outputs = dict(outputs)
        decoded: torch.Tensor = outputs.pop("decoded")
        maps: Sequence[torch.Tensor] = outputs.pop("decoder_maps")
        total, parts = self.reid(outputs, batch)
        pids = batch["pids"]
        with torch.autocast(device_type=decoded.device.type, enabled=False):
            if self.rec_weight > 0:
                target = batch["target"].to(decoded.device, torch.float32)
                if target.shape != decoded.shape:
                    raise ValueError(f"batch['target'] {tuple(target.shape)} does not match the decoded images "
                                     f"{tuple(decoded.shape)}")
                rec = F.l1_loss(decoded.float(), target)
                total = total + self.rec_weight * rec
                parts["rec"] = float(rec.detach())
            if self.tr_weight > 0:
                tri = sum(decoder_triplet(m.float(), pids, self.margin) for m in maps)
                total = total + self.tr_weight * tri
                parts["dtri"] = float(tri.detach())
        return total, parts
