"""Pooling and embedding heads shared by the global (baseline) and part (MGN) models.

Initialisation follows the reid-strong-baseline convention: Kaiming for new convolutions and
linear layers, weight 1 / bias 0 for norms, N(0, 0.001) for classifiers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError

POOLINGS = ("avg", "max", "gem")


def weights_init_kaiming(m: nn.Module) -> None:
    """Kaiming-normal weights for new conv/linear layers; unit scale and zero shift for norms."""
    if isinstance(m, nn.Linear):
        nn.init.kaiming_normal_(m.weight, a=0, mode="fan_out")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def weights_init_classifier(m: nn.Module) -> None:
    """Small normal weights for identity classifiers (logits start near uniform)."""
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.001)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class GeM(nn.Module):
    """Generalised-mean pooling to 1×1 with a learnable exponent ``p`` (p=1: average, p→∞: max).

    Computed in float32: ``x**p`` for p≈3 loses too much precision in bf16.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.float()
        pooled = F.adaptive_avg_pool2d(x.float().clamp(min=self.eps).pow(p), 1)
        return pooled.pow(1.0 / p).to(x.dtype)


def build_pooling(name: str, gem_p: float = 3.0) -> nn.Module:
    """Global pooling to B×C×1×1 by name (``MODEL.POOLING``)."""
    if name == "avg":
        return nn.AdaptiveAvgPool2d(1)
    if name == "max":
        return nn.AdaptiveMaxPool2d(1)
    if name == "gem":
        return GeM(gem_p)
    raise ConfigError(f"MODEL.POOLING must be one of {', '.join(POOLINGS)}, got {name!r}")


def bnneck(dim: int) -> nn.BatchNorm1d:
    """The BNNeck batch norm: its shift is frozen at 0 so CE and triplet see the same centred space."""
    bn = nn.BatchNorm1d(dim)
    weights_init_kaiming(bn)
    bn.bias.requires_grad_(False)
    return bn


def classifier(dim: int, num_classes: int) -> nn.Linear:
    """Bias-free identity classifier with the small-normal initialisation."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive number of training identities, got {num_classes}")
    fc = nn.Linear(dim, num_classes, bias=False)
    weights_init_classifier(fc)
    return fc
