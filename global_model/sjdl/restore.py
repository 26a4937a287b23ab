"""SJDL restoration as a reusable step: load a checkpoint's encoder stem/layer1 and defogging decoder
once, then restore batches of images (``defog`` writes them to files, ``extract --defog-with`` hands
them to another model).

Images run at the SJDL config's ``INPUT.SIZE_TEST`` with its normalisation; each result is resized
back to its source image's size, so whatever reads it next (another model's test transform, an
image file) sees an image of the original geometry.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..data.image_io import ImageReadError, clean_read_error, read_image
from ..data.records import ImageRecord
from ..engine.amp import autocast, resolve_amp
from ..engine.checkpoint import CheckpointError, load_checkpoint, load_model_weights
from ..engine.extractor import load_model_from_checkpoint
from .model import SJDL, build_defog_decoder, defog, unit_to_uint8

__all__ = ["Restorer"]

KINDS = ("decoded", "enhanced")


class Restorer:
    """The SJDL encoder + decoder of ``weights`` in eval mode (``opts``: config overrides)."""

    def __init__(self, weights: str, opts: Sequence[str] = ()):
        ckpt = load_checkpoint(weights)
        # Checkpoints written before the trainer's auxiliary-module seam keep the decoder at the top level.
        stored = (ckpt.get("aux") or {}).get("decoder", ckpt.get("decoder"))
        if stored is None:
            raise CheckpointError(f"{weights}: no 'aux/decoder' entry; defogging needs a checkpoint written by the "
                                  f"SJDL trainer (MODEL.META_ARCH sjdl)")
        model, cfg = load_model_from_checkpoint(weights, opts=opts)
        if not isinstance(model, SJDL):
            raise CheckpointError(f"{weights}: MODEL.META_ARCH is {cfg.MODEL.META_ARCH!r}, not 'sjdl'")
        self.device = next(model.parameters()).device
        self.decoder = build_defog_decoder(cfg, model)
        load_model_weights(self.decoder, stored, source=f"{weights} (aux/decoder)")
        self.decoder.to(self.device).eval()
        self.model, self.cfg, self.weights = model, cfg, weights
        self.dtype = resolve_amp(cfg.TEST.AMP, self.device)

    def batches(self, records: Sequence[ImageRecord], progress: bool = True,
                desc: str = "defog") -> Iterator[Tuple[List[str], Dict[str, List[np.ndarray]]]]:
        """``(paths, {"decoded": [...], "enhanced": [...]})`` per batch, in record order: H×W×3 uint8
        RGB arrays at each source image's size."""
        from post_processing.progress import progress_bar

        from ..data.dataset import build_test_loader

        try:
            with torch.inference_mode():
                for batch in progress_bar(build_test_loader(self.cfg, records), progress, desc=desc, unit="batch"):
                    with autocast(self.device, self.dtype):
                        results = dict(zip(KINDS, defog(self.model, self.decoder, batch["images"].to(self.device))))
                    out: Dict[str, List[np.ndarray]] = {k: [] for k in KINDS}
                    for i, path in enumerate(batch["paths"]):
                        h, w = read_image(path).shape[:2]
                        for kind in KINDS:
                            out[kind].append(cv2.resize(unit_to_uint8(results[kind][i]), (w, h),
                                                        interpolation=cv2.INTER_LINEAR))
                    yield list(batch["paths"]), out
        except ImageReadError as exc:
            raise clean_read_error(exc) from None

    def restore(self, records: Sequence[ImageRecord], kind: str = "enhanced", progress: bool = True) -> List[np.ndarray]:
        """The ``kind`` (enhanced or decoded) restoration of every record, in order."""
        return [img for _, out in self.batches(records, progress) for img in out[kind]]
