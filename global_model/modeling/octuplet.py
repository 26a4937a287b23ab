"""Octuplet loss (Knoche et al., "Octuplet Loss: Make Face Recognition Robust to Image Resolution",
FG 2023): four batch-hard triplet terms on the embeddings of a batch and of its low-resolution twin.

With ``E = [E_hr; E_lr]`` (B rows each, row i of both the same image) and labels ``y`` (B), each
term takes its anchors from one half and its candidates from the other (or the same) half::

    T_XY(i) = max(0, max_{j: y_j = y_i, j != i} d(X_i, Y_j) - min_{j: y_j != y_i} d(X_i, Y_j) + margin)
    L = mean_i [T_HH(i) + T_HL(i) + T_LH(i) + T_LL(i)]       (terms switched off drop out)

The positive masks leave out ``j = i`` in every block, so an image's own LR twin is never its
positive (as in the original). Features are L2-normalised first by default, so the margin is on
the unit-sphere scale (SNU_ReID's 25 was for raw 2048-d vectors).
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from post_processing.errors import ReidUsageError

__all__ = ["OCTUPLET_DISTANCES", "OCTUPLET_TERMS", "OctupletLoss", "block_distance"]

OCTUPLET_DISTANCES = ("euclidean", "sqeuclidean", "cosine")
OCTUPLET_TERMS = ("HH", "HL", "LH", "LL")  # anchor resolution, candidate resolution


class OctupletConfigError(ReidUsageError, ValueError):
    """An octuplet-loss setting the loss cannot be built with."""


def block_distance(x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """|x|×|y| distances between the rows of ``x`` and ``y``."""
    if kind == "cosine":
        return 1.0 - F.normalize(x, dim=1, eps=1e-12) @ F.normalize(y, dim=1, eps=1e-12).t()
    d2 = ((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.t())).clamp(min=0)
    return d2 if kind == "sqeuclidean" else d2.clamp(min=1e-12).sqrt()


class OctupletLoss(nn.Module):
    """``forward(hr, lr, pids) -> (loss, {term: value})``; see the module docstring."""

    def __init__(self, margin: float = 0.3, distance: str = "euclidean", normalize: bool = True,
                 terms: Sequence[str] = OCTUPLET_TERMS):
        super().__init__()
        if margin < 0:
            raise OctupletConfigError(f"the octuplet margin must be >= 0, got {margin}")
        if distance not in OCTUPLET_DISTANCES:
            raise OctupletConfigError(f"the octuplet distance must be one of {', '.join(OCTUPLET_DISTANCES)}, "
                                      f"got {distance!r}")
        unknown = [t for t in terms if t not in OCTUPLET_TERMS]
        if unknown or not terms:
            raise OctupletConfigError(f"octuplet terms must be a non-empty subset of {', '.join(OCTUPLET_TERMS)}, "
                                      f"got {list(terms)}")
        self.margin, self.distance, self.normalize = float(margin), distance, bool(normalize)
        self.terms = tuple(t for t in OCTUPLET_TERMS if t in terms)

    def forward(self, hr: torch.Tensor, lr: torch.Tensor, pids: torch.Tensor):
        if hr.shape != lr.shape or len(pids) != len(hr):
            raise ValueError(f"octuplet loss needs HR and LR embeddings of one shape and one label per row, got "
                             f"{tuple(hr.shape)}, {tuple(lr.shape)} and {len(pids)} labels")
        if self.normalize:
            hr, lr = F.normalize(hr, dim=1), F.normalize(lr, dim=1)
        same = pids[:, None] == pids[None, :]
        pos = same & ~torch.eye(len(pids), dtype=torch.bool, device=pids.device)
        neg = ~same
        valid = pos.any(1) & neg.any(1)
        views = {"H": hr, "L": lr}
        parts: Dict[str, torch.Tensor] = {}
        for term in self.terms:
            d = block_distance(views[term[0]], views[term[1]], self.distance)
            d_ap = d.masked_fill(~pos, float("-inf")).max(1).values
            d_an = d.masked_fill(~neg, float("inf")).min(1).values
            parts[term] = torch.where(valid, F.relu(d_ap - d_an + self.margin), torch.zeros_like(d_ap))
        if not bool(valid.any()):
            return hr.sum() * 0.0, {t: 0.0 for t in self.terms}
        per_anchor = sum(parts.values())[valid]
        return per_anchor.mean(), {t: float(v[valid].mean().detach()) for t, v in parts.items()}
