"""RVSL's image translation at inference: restoring hazy images, and its PSNR/SSIM at validation.

:func:`restore` is the hazy→clear path (hazy encoder, then the ``to_clear`` translator) that
``defog`` and validation run; :func:`render_haze` the clear→hazy one. :func:`restoration_metrics`
scores both on paired clear/foggy records and writes foggy | restored | clear | rendered-hazy panels;
:func:`rvsl_restorer` is RVSL's restorer for ``defog`` (the image kind ``restored``).
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..data.records import ImageRecord
from ..engine.amp import autocast, resolve_amp
from ..engine.checkpoint import CheckpointError, load_model_weights
from ..engine.restore import Restorer, register_restorer
from .model import RVSL, Translator, to_unit

__all__ = ["format_restoration", "render_haze", "restoration_metrics", "restore", "rvsl_restorer"]


def restore(model: RVSL, to_clear: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """[0, 1] clear images of a normalised hazy batch."""
    layer1, skip = model.hazy_encoder(images)
    return to_clear(layer1, skip, images.shape[-2:])


def render_haze(model: RVSL, to_hazy: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """[0, 1] hazy renderings of a normalised clear batch."""
    layer1, skip = model.clear_encoder(images)
    return to_hazy(layer1, skip, images.shape[-2:])


@register_restorer("rvsl")
def rvsl_restorer(ckpt: dict, model: RVSL, cfg, path: str) -> Restorer:
    """The hazy encoder and the ``aux/to_clear`` translator of an RVSL checkpoint."""
    stored = (ckpt.get("aux") or {}).get("to_clear")
    if stored is None:
        raise CheckpointError(f"{path}: no 'aux/to_clear' entry; defog needs a checkpoint written by the RVSL "
                              f"trainer (MODEL.META_ARCH rvsl)")
    to_clear = Translator(model.layer1_channels, model.skip_channels, cfg.MODEL.RVSL.WIDTH)
    load_model_weights(to_clear, stored, source=f"{path} (aux/to_clear)")
    to_clear.to(next(model.parameters()).device).eval()
    return Restorer(("restored",), lambda images: {"restored": restore(model, to_clear, images)})


def format_restoration(m: Mapping[str, float], pairs: int) -> str:
    return (f"on {pairs} clear/foggy pairs: PSNR foggy {m['psnr_foggy']:.2f} -> restored {m['psnr_restored']:.2f} dB "
            f"(rendered haze vs foggy {m['psnr_rendered']:.2f}), SSIM foggy {m['ssim_foggy']:.3f} -> restored "
            f"{m['ssim_restored']:.3f} (rendered {m['ssim_rendered']:.3f})")


def restoration_metrics(model: RVSL, aux: Mapping[str, nn.Module], records: List[ImageRecord], cfg,
                        device: torch.device, vis_dir: Optional[str] = None, vis_num: int = 4,
                        tag: str = "") -> Tuple[Dict[str, float], str]:
    """Mean PSNR/SSIM of the foggy input and the restored image vs the clear twin, and of the
    rendered haze vs the foggy image; ``vis_num`` panels into ``vis_dir`` (None = none)."""
    from ..data.dataset import build_test_loader
    from ..sjdl.metrics import psnr, ssim, write_panels
    from ..engine.restore import unit_to_uint8

    mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
    dtype = resolve_amp(cfg.TEST.AMP, device)
    modules = [model, aux["to_clear"], aux["to_hazy"]]
    modes = [m.training for m in modules]
    scores: Dict[str, List[torch.Tensor]] = {f"{m}_{k}": [] for m in ("psnr", "ssim")
                                             for k in ("foggy", "restored", "rendered")}
    panels: List[np.ndarray] = []
    for m in modules:
        m.eval()
    try:
        with torch.inference_mode():
            for batch in build_test_loader(cfg, records):
                images, clear_in = batch["images"].to(device), batch["clear"].to(device)
                with autocast(device, dtype):
                    restored = restore(model, aux["to_clear"], images).float()
                    rendered = render_haze(model, aux["to_hazy"], clear_in).float()
                foggy, clear = to_unit(images, mean, std), to_unit(clear_in, mean, std)
                for kind, img, ref in (("foggy", foggy, clear), ("restored", restored, clear),
                                       ("rendered", rendered, foggy)):
                    scores[f"psnr_{kind}"].append(psnr(img, ref).cpu())
                    scores[f"ssim_{kind}"].append(ssim(img, ref).cpu())
                wanted = vis_num - len(panels) if vis_dir else 0
                for i in range(min(len(images), wanted)):
                    row = [foggy[i], restored[i], clear[i], rendered[i]]
                    panels.append(np.concatenate([unit_to_uint8(t) for t in row], axis=1))
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
    if panels:
        write_panels(vis_dir, panels, records, tag)
    metrics = {k: float(torch.cat(v).mean()) for k, v in scores.items()}
    return metrics, format_restoration(metrics, len(records))
