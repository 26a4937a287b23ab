"""Defog a folder with an SJDL checkpoint (the library behind ``python -m global_model defog``).

The encoder's stem/layer1 and the decoder stored beside it (``aux/decoder`` entry of any checkpoint
the SJDL trainer writes) run at ``INPUT.SIZE_TEST``; each result is resized back to its source
image's size and written under the same file name (``--image both``: into ``decoded/`` and
``enhanced/`` sub-folders). Images directly inside ``--src`` are processed, in name order.
"""
from __future__ import annotations

import os
from typing import Dict, List

import cv2
import torch

from post_processing.errors import ReidUsageError
from post_processing.fileio import IMAGE_EXTENSIONS

from ..data.datasets.common import list_images
from ..data.image_io import ImageReadError, clean_read_error, read_image
from ..data.records import ImageRecord
from ..engine.amp import autocast, resolve_amp
from ..engine.checkpoint import CheckpointError, load_checkpoint, load_model_weights
from ..engine.extractor import load_model_from_checkpoint
from .model import SJDL, build_defog_decoder, defog, unit_to_uint8

__all__ = ["OUTPUTS", "defog_folder"]

OUTPUTS = ("enhanced", "decoded", "both")


def defog_folder(weights: str, src: str, out: str, output: str = "enhanced", opts=(), progress: bool = True) -> int:
    """Defog every image of ``src`` into ``out``; returns the number of images written."""
    from post_processing.fileio import atomic_write
    from post_processing.progress import progress_bar

    from ..data.dataset import build_test_loader

    if output not in OUTPUTS:
        raise ReidUsageError(f"--image must be one of {', '.join(OUTPUTS)}, got {output!r}")
    if not os.path.isdir(src):
        raise ReidUsageError(f"--src {src!r} is not a directory")
    names = list_images(src)
    if not names:
        raise ReidUsageError(f"--src {src!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    ckpt = load_checkpoint(weights)
    # Checkpoints written before the trainer's auxiliary-module seam keep the decoder at the top level.
    stored = (ckpt.get("aux") or {}).get("decoder", ckpt.get("decoder"))
    if stored is None:
        raise CheckpointError(f"{weights}: no 'aux/decoder' entry; defog needs a checkpoint written by the SJDL "
                              f"trainer (MODEL.META_ARCH sjdl)")
    model, cfg = load_model_from_checkpoint(weights, opts=opts)
    if not isinstance(model, SJDL):
        raise CheckpointError(f"{weights}: MODEL.META_ARCH is {cfg.MODEL.META_ARCH!r}, not 'sjdl'")
    device = next(model.parameters()).device
    decoder = build_defog_decoder(cfg, model)
    load_model_weights(decoder, stored, source=f"{weights} (aux/decoder)")
    decoder.to(device).eval()
    dtype = resolve_amp(cfg.TEST.AMP, device)
    kinds = ["decoded", "enhanced"] if output == "both" else [output]
    dirs: Dict[str, str] = {k: os.path.join(out, k) if output == "both" else out for k in kinds}
    records: List[ImageRecord] = [ImageRecord(os.path.join(src, n), -1, -1) for n in names]
    written = 0
    try:
        with torch.inference_mode():
            for batch in progress_bar(build_test_loader(cfg, records), progress, desc="defog", unit="batch"):
                images = batch["images"].to(device)
                with autocast(device, dtype):
                    decoded, enhanced = defog(model, decoder, images)
                results = {"decoded": decoded, "enhanced": enhanced}
                for i, path in enumerate(batch["paths"]):
                    h, w = read_image(path).shape[:2]
                    for kind in kinds:
                        rgb = cv2.resize(unit_to_uint8(results[kind][i]), (w, h), interpolation=cv2.INTER_LINEAR)
                        ext = os.path.splitext(path)[1].lower()
                        ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                        if not ok:
                            raise OSError(f"cannot encode the defogged {path} as {ext}")
                        os.makedirs(dirs[kind], exist_ok=True)
                        with atomic_write(os.path.join(dirs[kind], os.path.basename(path)), "wb") as f:
                            f.write(buf.tobytes())
                    written += 1
    except ImageReadError as exc:
        raise clean_read_error(exc) from None
    return written
