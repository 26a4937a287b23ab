"""RVSL's physical priors on unpaired real images (B×3×H×W RGB in [0, 1], means over the whole batch).

Haze follows ``I = J·t + A·(1 − t)``: it lifts every pixel towards the airlight ``A``, so

- the dark channel (per-pixel channel minimum, then a min filter) of a hazy image is higher than
  that of its clear scene: :func:`midc_loss` (monotonically increasing dark channel) penalises the
  pixels where a rendered hazy image has a *lower* channel minimum than the clear input, and
  :func:`dark_channel_loss` pushes a restored image's dark channel **towards 0** (the published
  code pushes it towards 1: the sign is corrected here);
- in chromaticity space a hazy pixel lies on the line between its clear chromaticity and the
  airlight's (the haze line): :func:`colinear_loss` compares the unit directions from the
  airlight chromaticity to the hazy and to the clear chromaticity. ``A`` is the mean colour of the
  top 0.1% pixels of the eroded dark channel of the hazy image (:func:`estimate_airlight`);
- :func:`total_variation_loss` keeps a restored image smooth.

Every prior uses every image of the batch (the published stage 3 uses sample 0 only).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["colinear_loss", "dark_channel", "dark_channel_loss", "estimate_airlight", "midc_loss",
           "total_variation_loss"]


def _check(x: torch.Tensor, what: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{what} must be a B×3×H×W image batch, got shape {tuple(x.shape)}")


def _min_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    return -F.max_pool2d(-x, size, stride=1, padding=size // 2) if size > 1 else x


def dark_channel(images: torch.Tensor, patch: int = 35) -> torch.Tensor:
    """B×1×H×W dark channel: channel minimum, then a ``patch``×``patch`` min filter (stride 1)."""
    _check(images, "dark_channel input")
    if patch < 1 or patch % 2 == 0:
        raise ValueError(f"the dark-channel patch must be an odd positive window, got {patch}")
    return _min_filter(images.amin(1, keepdim=True), patch)


def dark_channel_loss(restored: torch.Tensor, patch: int = 35) -> torch.Tensor:
    """Mean dark channel of a restored image: 0 for a haze-free image (He et al.), higher with haze."""
    return dark_channel(restored, patch).mean()


def midc_loss(clear: torch.Tensor, hazy: torch.Tensor) -> torch.Tensor:
    """Mean ``|dc(hazy) − dc(clear)|`` over the pixels where haze *lowered* the channel minimum."""
    _check(clear, "midc clear image")
    _check(hazy, "midc hazy image")
    dc_c, dc_h = clear.amin(1), hazy.amin(1)
    mask = (dc_c > dc_h).to(hazy.dtype)
    return ((dc_h - dc_c).abs() * mask).sum() / mask.sum().clamp(min=1.0)


def estimate_airlight(hazy: torch.Tensor, top: float = 0.001, erode: int = 3) -> torch.Tensor:
    """B×3 airlight: the mean RGB of the ``max(floor(H·W·top), 1)`` pixels with the highest eroded
    dark channel (channel minimum, ``erode``×``erode`` min filter) of each image; no gradient."""
    _check(hazy, "airlight input")
    with torch.no_grad():
        dc = _min_filter(hazy.amin(1, keepdim=True), erode).flatten(1)
        k = max(int(math.floor(dc.shape[1] * top)), 1)
        idx = dc.topk(k, dim=1).indices  # B×k
        pixels = hazy.flatten(2).gather(2, idx.unsqueeze(1).expand(-1, 3, -1))  # B×3×k
        return pixels.mean(2)


def colinear_loss(clear: torch.Tensor, hazy: torch.Tensor, airlight: Optional[torch.Tensor] = None,
                  top: float = 0.001, erode: int = 3, eps: float = 1e-6) -> torch.Tensor:
    """MSE between the unit directions ``normalize(σ − Â)`` and ``normalize(γ − Â)`` (σ, γ, Â: the
    chromaticities of the hazy, the clear image and the airlight); 0 when they are colinear."""
    _check(clear, "colinear clear image")
    _check(hazy, "colinear hazy image")
    if airlight is None:
        airlight = estimate_airlight(hazy, top, erode)
    a = airlight / airlight.sum(1, keepdim=True).clamp(min=eps)
    a = a.view(-1, 3, 1, 1).to(hazy.dtype)
    gamma = clear / clear.sum(1, keepdim=True).clamp(min=eps)
    sigma = hazy / hazy.sum(1, keepdim=True).clamp(min=eps)
    return F.mse_loss(F.normalize(sigma - a, dim=1, eps=eps), F.normalize(gamma - a, dim=1, eps=eps))


def total_variation_loss(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute vertical plus horizontal difference."""
    _check(images, "total_variation input")
    return ((images[..., 1:, :] - images[..., :-1, :]).abs().mean()
            + (images[..., :, 1:] - images[..., :, :-1]).abs().mean())
