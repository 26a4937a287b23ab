"""Restoring a folder of hazy images with a family's translator (the library behind ``defog``).

A family that can restore images registers a builder with ``@register_restorer(meta_arch)`` (SJDL:
its decoder and enhancement head; RVSL: its hazy encoder and hazy→clear translator). The builder
receives the checkpoint dict, the model ``load_model_from_checkpoint`` rebuilt, its config and the
checkpoint path, and returns a :class:`Restorer`: the names of the images it makes (the first is
the default of ``--image``) and a function from a normalised batch to those images, B×3×H×W RGB in
[0, 1]. Families are found like architectures (``MODEL.META_ARCH`` imports its package).

Each result is resized back to its source image's size and written under the same file name;
``--image all`` (or ``both``) writes every kind into a sub-folder of its name. Images directly
inside ``src`` are processed, in name order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import torch

from post_processing.errors import ReidUsageError
from post_processing.fileio import IMAGE_EXTENSIONS
from post_processing.registry import Registry

from ..data.datasets.common import list_images
from ..data.image_io import ImageReadError, clean_read_error, read_image
from ..data.records import ImageRecord
from ..families import discover_family
from .amp import autocast, resolve_amp
from .checkpoint import CheckpointError, load_checkpoint
from .extractor import load_model_from_checkpoint

__all__ = ["ALL", "RESTORERS", "Restorer", "defog_folder", "register_restorer"]

ALL = ("all", "both")  # --image values that write every kind the family makes

RESTORERS: Registry = Registry("restorer", discover=discover_family)


@dataclass(frozen=True)
class Restorer:
    """The image kinds a family makes (first = default) and the batch → ``{kind: images}`` function."""

    kinds: Tuple[str, ...]
    run: Callable[[torch.Tensor], Dict[str, torch.Tensor]]


def register_restorer(name: str):
    """Decorator: ``fn(ckpt, model, cfg, path) -> Restorer`` restores with ``MODEL.META_ARCH == name`` checkpoints."""
    return RESTORERS.register(name)


def _to_uint8(image: torch.Tensor):
    return (image.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def defog_folder(checkpoint: str, src: str, out: str, image: Optional[str] = None, opts: Sequence[str] = (),
                 progress: bool = True) -> int:
    """Restore every image of ``src`` into ``out``; returns the number of images written."""
    from post_processing.fileio import atomic_write
    from post_processing.progress import progress_bar

    from ..data.dataset import build_test_loader

    if not os.path.isdir(src):
        raise ReidUsageError(f"--src {src!r} is not a directory")
    names = list_images(src)
    if not names:
        raise ReidUsageError(f"--src {src!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    ckpt = load_checkpoint(checkpoint)
    model, cfg = load_model_from_checkpoint(checkpoint, opts=opts)
    build = RESTORERS.find(cfg.MODEL.META_ARCH)
    if build is None:
        raise CheckpointError(f"{checkpoint}: MODEL.META_ARCH {cfg.MODEL.META_ARCH!r} cannot restore images; "
                              f"defog needs a checkpoint of {', '.join(RESTORERS.names())}")
    restorer = build(ckpt, model, cfg, checkpoint)
    image = image or restorer.kinds[0]
    if image not in restorer.kinds + ALL:
        raise ReidUsageError(f"--image must be one of {', '.join(restorer.kinds + ALL)} for a "
                             f"{cfg.MODEL.META_ARCH} checkpoint, got {image!r}")
    kinds = list(restorer.kinds) if image in ALL else [image]
    dirs: Dict[str, str] = {k: os.path.join(out, k) if image in ALL else out for k in kinds}
    device = next(model.parameters()).device
    dtype = resolve_amp(cfg.TEST.AMP, device)
    records: List[ImageRecord] = [ImageRecord(os.path.join(src, n), -1, -1) for n in names]
    written = 0
    try:
        with torch.inference_mode():
            for batch in progress_bar(build_test_loader(cfg, records), progress, desc="defog", unit="batch"):
                with autocast(device, dtype):
                    results = restorer.run(batch["images"].to(device))
                for i, path in enumerate(batch["paths"]):
                    h, w = read_image(path).shape[:2]
                    for kind in kinds:
                        rgb = cv2.resize(_to_uint8(results[kind][i]), (w, h), interpolation=cv2.INTER_LINEAR)
                        ext = os.path.splitext(path)[1].lower()
                        ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                        if not ok:
                            raise OSError(f"cannot encode the restored {path} as {ext}")
                        os.makedirs(dirs[kind], exist_ok=True)
                        with atomic_write(os.path.join(dirs[kind], os.path.basename(path)), "wb") as f:
                            f.write(buf.tobytes())
                    written += 1
    except ImageReadError as exc:
        raise clean_read_error(exc) from None
    return written
