"""Restoration quality for SJDL's validation: PSNR, SSIM, the log line and the PNG panels."""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

from ..data.records import ImageRecord

__all__ = ["format_restoration", "psnr", "ssim", "write_panels"]


def psnr(restored: torch.Tensor, clear: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of B×3×H×W images in [0, 1]."""
    mse = (restored.float() - clear.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp(min=1e-10))


def ssim(restored: torch.Tensor, clear: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004: 11×11 Gaussian window, σ 1.5) of B×3×H×W images in [0, 1],
    averaged over channels and the valid (unpadded) window positions."""
    x, y = restored.float(), clear.float()
    window = min(window, x.shape[-2], x.shape[-1])
    coords = torch.arange(window, dtype=torch.float32, device=x.device) - (window - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, window, window).contiguous()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=x.shape[1])

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


def format_restoration(m: Dict[str, float], pairs: int) -> str:
    """One line: PSNR/SSIM of the foggy input → decoded / enhanced images."""
    return (f"on {pairs} clear/foggy pairs: PSNR foggy {m['psnr_foggy']:.2f} -> decoded {m['psnr_decoded']:.2f} / "
            f"enhanced {m['psnr_enhanced']:.2f} dB, SSIM foggy {m['ssim_foggy']:.3f} -> decoded "
            f"{m['ssim_decoded']:.3f} / enhanced {m['ssim_enhanced']:.3f}")


def write_panels(folder: str, panels: List[np.ndarray], records: List[ImageRecord], tag: str) -> None:
    """``folder/<tag>_<image name>.png`` for each H×W×3 RGB panel (one per record, in order)."""
    import cv2

    from post_processing.fileio import atomic_write

    os.makedirs(folder, exist_ok=True)
    for panel, rec in zip(panels, records):
        ok, buf = cv2.imencode(".png", cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"cannot encode the defogging panel of {rec.path} as PNG")
        with atomic_write(os.path.join(folder, f"{tag}_{os.path.splitext(rec.name)[0]}.png"), "wb") as f:
            f.write(buf.tobytes())
