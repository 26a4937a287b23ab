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
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
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

__all__ = ["ALL", "RESTORERS", "ImageRestorer", "Restorer", "defog_folder", "register_restorer", "unit_to_uint8"]

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


def unit_to_uint8(image: torch.Tensor) -> np.ndarray:
    """One 3×H×W RGB image in [0, 1] → H×W×3 uint8 RGB array (restored files and PNG panels)."""
    return (image.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class ImageRestorer:
    """A checkpoint's :class:`Restorer` loaded once, restoring batches of records to images of their
    source size (``defog`` writes them to files, ``extract --defog-with`` hands them to another model)."""

    def __init__(self, checkpoint: str, opts: Sequence[str] = ()):
        ckpt = load_checkpoint(checkpoint)
        model, cfg = load_model_from_checkpoint(checkpoint, opts=opts, ckpt=ckpt)
        build = RESTORERS.find(cfg.MODEL.META_ARCH)
        if build is None:
            raise CheckpointError(f"{checkpoint}: MODEL.META_ARCH {cfg.MODEL.META_ARCH!r} cannot restore images; "
                                  f"restoring needs a checkpoint of {', '.join(RESTORERS.names())}")
        self.restorer = build(ckpt, model, cfg, checkpoint)
        self.kinds: Tuple[str, ...] = self.restorer.kinds
        self.cfg, self.checkpoint = cfg, checkpoint
        self.device = next(model.parameters()).device
        self.dtype = resolve_amp(cfg.TEST.AMP, self.device)

    def batches(self, records: Sequence[ImageRecord], kinds: Optional[Sequence[str]] = None, progress: bool = True,
                desc: str = "defog") -> Iterator[Tuple[List[str], Dict[str, List[np.ndarray]]]]:
        """``(paths, {kind: [H×W×3 uint8 RGB at each source image's size]})`` per batch, in record order,
        for ``kinds`` (default: the first, the family's main image)."""
        from post_processing.progress import progress_bar

        from ..data.dataset import build_test_loader

        kinds = list(kinds or self.kinds[:1])
        try:
            with torch.inference_mode():
                for batch in progress_bar(build_test_loader(self.cfg, records), progress, desc=desc, unit="batch"):
                    with autocast(self.device, self.dtype):
                        results = self.restorer.run(batch["images"].to(self.device))
                    out: Dict[str, List[np.ndarray]] = {k: [] for k in kinds}
                    for i, path in enumerate(batch["paths"]):
                        h, w = read_image(path).shape[:2]
                        for kind in kinds:
                            out[kind].append(cv2.resize(unit_to_uint8(results[kind][i]), (w, h),
                                                        interpolation=cv2.INTER_LINEAR))
                    yield list(batch["paths"]), out
        except ImageReadError as exc:
            raise clean_read_error(exc) from None

    def restore(self, records: Sequence[ImageRecord], kind: Optional[str] = None,
                progress: bool = True) -> List[np.ndarray]:
        """The ``kind`` (default: the family's main image) restoration of every record, in order."""
        kind = kind or self.kinds[0]
        return [img for _, out in self.batches(records, [kind], progress) for img in out[kind]]


def defog_folder(checkpoint: str, src: str, out: str, image: Optional[str] = None, opts: Sequence[str] = (),
                 progress: bool = True) -> int:
    """Restore every image of ``src`` into ``out``; returns the number of images written."""
    from post_processing.fileio import atomic_write

    if not os.path.isdir(src):
        raise ReidUsageError(f"--src {src!r} is not a directory")
    names = list_images(src)
    if not names:
        raise ReidUsageError(f"--src {src!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    restorer = ImageRestorer(checkpoint, opts)
    image = image or restorer.kinds[0]
    if image not in restorer.kinds + ALL:
        raise ReidUsageError(f"--image must be one of {', '.join(restorer.kinds + ALL)} for a "
                             f"{restorer.cfg.MODEL.META_ARCH} checkpoint, got {image!r}")
    kinds = list(restorer.kinds) if image in ALL else [image]
    dirs: Dict[str, str] = {k: os.path.join(out, k) if image in ALL else out for k in kinds}
    records: List[ImageRecord] = [ImageRecord(os.path.join(src, n), -1, -1) for n in names]
    written = 0
    for paths, results in restorer.batches(records, kinds, progress):
        for i, path in enumerate(paths):
            for kind in kinds:
                ext = os.path.splitext(path)[1].lower()
                ok, buf = cv2.imencode(ext, cv2.cvtColor(results[kind][i], cv2.COLOR_RGB2BGR))
                if not ok:
                    raise OSError(f"cannot encode the restored {path} as {ext}")
                os.makedirs(dirs[kind], exist_ok=True)
                with atomic_write(os.path.join(dirs[kind], os.path.basename(path)), "wb") as f:
                    f.write(buf.tobytes())
            written += 1
    return written
