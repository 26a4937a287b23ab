"""Decoded SAN targets as panels (the library behind ``python -m global_model san-panels``).

For every image directly inside ``src`` (name order), the encoder's stage maps and the decoder
stored beside it (``aux/decoder`` of any checkpoint the SAN trainer writes) run at
``INPUT.SIZE_TEST`` and ``out/<stem>.png`` gets three columns: the input | its target (the file of
the same name with any image extension under ``targets``; a grey column when there is none or no
``targets`` folder is given) | the decoded image.
"""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

import cv2
import numpy as np
import torch

from post_processing.errors import ReidUsageError
from post_processing.fileio import IMAGE_EXTENSIONS

from ..data.datasets.common import list_images
from ..data.image_io import ImageReadError, clean_read_error, read_image
from ..data.records import ImageRecord
from ..engine.amp import autocast, resolve_amp
from ..engine.checkpoint import CheckpointError, load_checkpoint, load_model_weights
from ..engine.extractor import load_model_from_checkpoint
from .model import SAN, build_decoder
from .targets import find_target

__all__ = ["write_panels"]

GREY = 128


def _to_uint8(images: torch.Tensor, mean, std) -> np.ndarray:
    """Normalised B×3×H×W network input → B×H×W×3 uint8 RGB."""
    m = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return _unit_to_uint8(images.float().cpu() * s + m)


def _unit_to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def write_panels(checkpoint: str, src: str, out: str, targets: Optional[str] = None, opts=(),
                 progress: bool = True) -> Tuple[int, int]:
    """Write an input | target | decoded panel per image of ``src`` into ``out``; returns (panels, with target)."""
    from post_processing.fileio import atomic_write
    from post_processing.progress import progress_bar

    from ..data.dataset import build_test_loader

    if not os.path.isdir(src):
        raise ReidUsageError(f"--src {src!r} is not a directory")
    if targets is not None and not os.path.isdir(targets):
        raise ReidUsageError(f"--targets {targets!r} is not a directory")
    names = list_images(src)
    if not names:
        raise ReidUsageError(f"--src {src!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    ckpt = load_checkpoint(checkpoint)
    stored = (ckpt.get("aux") or {}).get("decoder")
    if stored is None:
        raise CheckpointError(f"{checkpoint}: no 'aux/decoder' entry; san-panels needs a checkpoint written by the "
                              f"SAN trainer (MODEL.META_ARCH san)")
    model, cfg = load_model_from_checkpoint(checkpoint, opts=opts, ckpt=ckpt)
    if not isinstance(model, SAN):
        raise CheckpointError(f"{checkpoint}: MODEL.META_ARCH is {cfg.MODEL.META_ARCH!r}, not 'san'")
    device = next(model.parameters()).device
    decoder = build_decoder(cfg, model)
    load_model_weights(decoder, stored, source=f"{checkpoint} (aux/decoder)")
    decoder.to(device).eval()
    dtype = resolve_amp(cfg.TEST.AMP, device)
    records: List[ImageRecord] = [ImageRecord(os.path.join(src, n), -1, -1) for n in names]
    os.makedirs(out, exist_ok=True)
    written = with_target = 0
    try:
        with torch.inference_mode():
            for batch in progress_bar(build_test_loader(cfg, records), progress, desc="san-panels", unit="batch"):
                images = batch["images"].to(device)
                with autocast(device, dtype):
                    decoded, _ = decoder(model.stage_maps(images), images.shape[-2:])
                inputs = _to_uint8(batch["images"], cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)
                for path, shown, dec in zip(batch["paths"], inputs, _unit_to_uint8(decoded)):
                    h, w = dec.shape[:2]
                    found = find_target(targets, os.path.basename(path)) if targets else []
                    target = (cv2.resize(read_image(found[0]), (w, h), interpolation=cv2.INTER_AREA) if found
                              else np.full((h, w, 3), GREY, np.uint8))
                    with_target += bool(found)
                    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.concatenate([shown, target, dec], 1),
                                                               cv2.COLOR_RGB2BGR))
                    if not ok:
                        raise OSError(f"cannot encode the panel of {path} as PNG")
                    stem = os.path.splitext(os.path.basename(path))[0]
                    with atomic_write(os.path.join(out, stem + ".png"), "wb") as f:
                        f.write(buf.tobytes())
                    written += 1
    except ImageReadError as exc:
        raise clean_read_error(exc) from None
    return written, with_target
