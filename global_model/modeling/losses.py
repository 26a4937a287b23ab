"""Re-identification losses over the model output contract (see ``global_model.modeling``).

``build_loss(cfg, num_classes, feat_dim)`` returns a module whose ``forward(outputs, batch)`` gives
``(total, parts)``: ``total`` = Σ weight·term over the terms with a non-zero ``LOSS.*_WEIGHT``;
``parts`` maps each term name to its *unweighted* value (a float, for logs). Each term is **summed**
over the tensors of its list (one per classifier / global vector), as MGN does; a single-vector
model has one tensor per list, so sum and mean agree there.

- ``ce``: label-smoothed cross-entropy on every tensor in ``outputs["logits"]``;
- ``triplet``: batch-hard triplet on every tensor in ``outputs["triplet_feats"]`` (euclidean;
  ``LOSS.TRIPLET_MARGIN`` 0 selects the soft margin ``softplus(d_ap - d_an)``);
- ``center``: squared distance to learnable class centres for ``outputs["center_feats"]``
  (width ``feat_dim``); the centres are this module's parameters, see ``center_parameters()``;
- ``circle``: pairwise circle loss (Sun et al., CVPR 2020) on every tensor in ``triplet_feats``.

All terms run in float32 with autocast disabled, so they are exact under bf16/fp16 training.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def pairwise_euclidean(x: torch.Tensor) -> torch.Tensor:
    """N×N euclidean distances between the rows of ``x`` (clamped away from 0 for a finite gradient)."""
    sq = (x * x).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.t())
    return d2.clamp(min=1e-12).sqrt()


def _pair_masks(pids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) N×N masks; an image is not its own positive."""
    same = pids[:, None] == pids[None, :]
    eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    return same & ~eye, ~same


def hard_example_mining(dist: torch.Tensor, pids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per anchor, the farthest positive and nearest negative distance, and which anchors have both."""
    pos, neg = _pair_masks(pids)
    valid = pos.any(1) & neg.any(1)
    d_ap = dist.masked_fill(~pos, float("-inf")).max(1).values
    d_an = dist.masked_fill(~neg, float("inf")).min(1).values
    return d_ap, d_an, valid


class TripletLoss(nn.Module):
    """Batch-hard triplet loss; anchors without a positive or a negative in the batch are skipped."""

    def __init__(self, margin: float = 0.3):
        super().__init__()
        if margin < 0:
            raise ValueError(f"LOSS.TRIPLET_MARGIN must be >= 0 (0 = soft margin), got {margin}")
        self.margin = margin

    def forward(self, feats: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        d_ap, d_an, valid = hard_example_mining(pairwise_euclidean(feats), pids)
        if not bool(valid.any()):
            return feats.sum() * 0.0
        diff = d_ap[valid] - d_an[valid]
        return F.softplus(diff).mean() if self.margin == 0 else F.relu(diff + self.margin).mean()


class CenterLoss(nn.Module):
    """Mean squared distance of each feature to its class centre (Wen et al., ECCV 2016)."""

    def __init__(self, num_classes: int, feat_dim: int):
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, feats: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        if feats.shape[1] != self.centers.shape[1]:
            raise ValueError(f"center loss was built for {self.centers.shape[1]}-d features (feat_dim) but the model's "
                             f"center_feats are {feats.shape[1]}-d")
        return (feats - self.centers[pids]).pow(2).sum(1).clamp(1e-12, 1e12).mean()


class CircleLoss(nn.Module):
    """Pairwise circle loss on cosine similarities with self-paced weights ``alpha`` (held constant)."""

    def __init__(self, margin: float = 0.25, gamma: float = 128.0):
        super().__init__()
        self.margin, self.gamma = margin, gamma

    def forward(self, feats: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        pos, neg = _pair_masks(pids)
        valid = pos.any(1) & neg.any(1)
        if not bool(valid.any()):
            return feats.sum() * 0.0
        x = F.normalize(feats, dim=1)
        sim = (x[valid] @ x.t())
        pos, neg = pos[valid], neg[valid]
        m, gamma = self.margin, self.gamma
        alpha_p = (1.0 + m - sim).clamp(min=0).detach()
        alpha_n = (sim + m).clamp(min=0).detach()
        logit_p = (-gamma * alpha_p * (sim - (1.0 - m))).masked_fill(~pos, float("-inf"))
        logit_n = (gamma * alpha_n * (sim - m)).masked_fill(~neg, float("-inf"))
        return F.softplus(logit_p.logsumexp(1) + logit_n.logsumexp(1)).mean()


class ReIDLoss(nn.Module):
    """Weighted sum of the configured terms; see the module docstring for the contract."""

    def __init__(self, num_classes: int, feat_dim: int, ce_weight: float = 1.0, label_smooth: float = 0.1,
                 triplet_weight: float = 1.0, triplet_margin: float = 0.3, center_weight: float = 0.0,
                 circle_weight: float = 0.0, circle_margin: float = 0.25, circle_gamma: float = 128.0):
        super().__init__()
        weights = {"ce": ce_weight, "triplet": triplet_weight, "center": center_weight, "circle": circle_weight}
        for term, w in weights.items():
            if w < 0:
                raise ValueError(f"LOSS.{term.upper()}_WEIGHT must be >= 0, got {w}")
        if not any(weights.values()):
            raise ValueError("every LOSS.*_WEIGHT is 0: at least one loss term is needed")
        if not 0 <= label_smooth < 1:
            raise ValueError(f"LOSS.LABEL_SMOOTH must lie in [0, 1), got {label_smooth}")
        self.weights = {term: float(w) for term, w in weights.items() if w > 0}
        self.num_classes = num_classes
        self.label_smooth = label_smooth
        self.triplet = TripletLoss(triplet_margin)
        self.circle = CircleLoss(circle_margin, circle_gamma)
        self.center = CenterLoss(num_classes, feat_dim) if center_weight > 0 else None

    def center_parameters(self) -> List[nn.Parameter]:
        """The class centres (empty without center loss).

        The trainer optimises them with their own SGD at ``LOSS.CENTER_LR`` (not in the model's
        optimiser) and, as in reid-strong-baseline, scales their gradient by ``1 / LOSS.CENTER_WEIGHT``
        before stepping so the centre update does not depend on the loss weight.
        """
        return [] if self.center is None else list(self.center.parameters())

    def _tensors(self, outputs: dict, key: str, term: str) -> List[torch.Tensor]:
        value = outputs.get(key)
        if not value:
            raise ValueError(f"LOSS.{term.upper()}_WEIGHT > 0 needs the model output '{key}' (a non-empty list of "
                             f"tensors), got keys {sorted(outputs)}")
        return [value] if isinstance(value, torch.Tensor) else list(value)

    def _check_pids(self, batch: dict) -> torch.Tensor:
        pids = batch.get("pids") if isinstance(batch, dict) else None
        if not isinstance(pids, torch.Tensor) or pids.dim() != 1 or pids.dtype not in (torch.int64, torch.int32):
            raise ValueError("batch['pids'] must be a 1-D integer tensor of training labels")
        if bool(((pids < 0) | (pids >= self.num_classes)).any()):
            raise ValueError(f"batch['pids'] must lie in 0..{self.num_classes - 1} (num_classes={self.num_classes}); "
                             f"got values {int(pids.min())}..{int(pids.max())}")
        return pids.long()

    def forward(self, outputs: dict, batch: dict) -> Tuple[torch.Tensor, Dict[str, float]]:
        pids = self._check_pids(batch)
        terms: Dict[str, torch.Tensor] = {}
        with torch.autocast(device_type=pids.device.type, enabled=False):
            if "ce" in self.weights:
                logits = self._tensors(outputs, "logits", "ce")
                for t in logits:
                    if t.shape != (len(pids), self.num_classes):
                        raise ValueError(f"logits of shape {tuple(t.shape)} do not match {len(pids)} labels × "
                                         f"{self.num_classes} classes")
                terms["ce"] = sum(F.cross_entropy(t.float(), pids, label_smoothing=self.label_smooth) for t in logits)
            if "triplet" in self.weights:
                feats = self._tensors(outputs, "triplet_feats", "triplet")
                terms["triplet"] = sum(self.triplet(f.float(), pids) for f in feats)
            if "center" in self.weights:
                feats = self._tensors(outputs, "center_feats", "center")
                terms["center"] = sum(self.center(f.float(), pids) for f in feats)
            if "circle" in self.weights:
                feats = self._tensors(outputs, "triplet_feats", "circle")
                terms["circle"] = sum(self.circle(f.float(), pids) for f in feats)
            total = sum(self.weights[name] * value for name, value in terms.items())
        return total, {name: float(value.detach()) for name, value in terms.items()}


def build_loss(cfg, num_classes: int, feat_dim: int) -> ReIDLoss:
    """The loss of ``cfg.LOSS`` for ``num_classes`` identities; ``feat_dim`` is the centre width (model.feat_dim)."""
    c = cfg.LOSS
    return ReIDLoss(num_classes, feat_dim, ce_weight=c.CE_WEIGHT, label_smooth=c.LABEL_SMOOTH,
                    triplet_weight=c.TRIPLET_WEIGHT, triplet_margin=c.TRIPLET_MARGIN, center_weight=c.CENTER_WEIGHT,
                    circle_weight=c.CIRCLE_WEIGHT, circle_margin=c.CIRCLE_MARGIN, circle_gamma=c.CIRCLE_GAMMA)
