"""``FeatureExtractor``: L2-normalised ReID features of images from a trained checkpoint, from Python.

The equivalent of torchreid's ``FeatureExtractor``::

    from global_model.api import FeatureExtractor
    extractor = FeatureExtractor("outputs/run/model_final.pth", device="cpu")
    feats = extractor(["a.jpg", "b.jpg"])          # 2×D float32, unit rows
    feats = extractor(rgb_uint8_array)             # one H×W×3 image (or a list of them)
    feats = extractor(preprocessed_tensor)         # B×3×H×W, already resized and normalised

The model is rebuilt from the config stored in the checkpoint (``config``/``opts`` as in
``extract``), BatchNorm is folded into the convolutions and extraction runs exactly as ``extract``
runs it (test transform, flip TTA from ``TEST.FLIP``, AMP from ``TEST.AMP``), so these features
can be compared with feature files ``extract`` wrote from the same checkpoint.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from post_processing.errors import ReidUsageError

from .data.image_io import read_image
from .data.records import ImageRecord
from .data.transforms import build_transforms
from .engine.amp import resolve_amp
from .engine.extractor import extract_features, infer_batch, load_model_from_checkpoint, prepare_for_inference

__all__ = ["FeatureExtractor", "ImageInputError"]

Image = Union[str, "os.PathLike[str]", np.ndarray, torch.Tensor]


class ImageInputError(ReidUsageError, TypeError):
    """An input that is not a path, an H×W×3 uint8 array or a 3×H×W / B×3×H×W tensor."""


class FeatureExtractor:
    """Callable feature extractor over one checkpoint; returns N×D float32 numpy arrays with unit rows.

    ``opts`` are ``KEY VALUE`` config overrides (``["TEST.IMS_PER_BATCH", "32"]``); ``device``
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``) overrides ``MODEL.DEVICE``.
    """

    def __init__(self, checkpoint: str, config: Optional[str] = None, opts: Sequence[str] = (),
                 device: Optional[str] = None, progress: bool = False):
        from .config import load_config

        opts = [*opts, *(("MODEL.DEVICE", device) if device else ())]
        cfg = load_config(config, opts) if config else None
        model, cfg = load_model_from_checkpoint(checkpoint, cfg, opts)
        cfg = cfg.clone()
        cfg.defrost()
        cfg.TEST.NORM = True  # the API promises unit rows whatever the training config said
        cfg.freeze()
        self.cfg = cfg
        self.checkpoint = checkpoint
        self.device = next(model.parameters()).device
        self.model = prepare_for_inference(model, bool(cfg.MODEL.CHANNELS_LAST), inplace=True)
        self.progress = progress
        self._transform = build_transforms(cfg, is_train=False)

    def __call__(self, images: Union[Image, Sequence[Image]]) -> np.ndarray:
        """Features of one input or a list of inputs (paths, RGB uint8 arrays, preprocessed tensors), in order."""
        if isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim in (2, 3)):
            images = [images]
        elif isinstance(images, torch.Tensor):
            return self._infer(images.unsqueeze(0) if images.dim() == 3 else images)
        items = list(images)
        if not items:
            return np.zeros((0, 0), np.float32)
        if all(isinstance(x, (str, os.PathLike)) for x in items):
            records = [ImageRecord(os.fspath(p), -1, -1) for p in items]
            return extract_features(self.model, records, self.cfg, self.device, progress=self.progress)[1]
        return self._infer(torch.stack([self._preprocess(x, i) for i, x in enumerate(items)]))

    def _preprocess(self, item: Image, index: int) -> torch.Tensor:
        """One input as a preprocessed 3×H×W float tensor."""
        if isinstance(item, torch.Tensor):
            if item.dim() != 3 or item.shape[0] != 3:
                raise ImageInputError(f"input {index}: a tensor in a list must be 3×H×W (preprocessed), "
                                      f"got {tuple(item.shape)}")
            return item.float()
        if isinstance(item, (str, os.PathLike)):
            item = read_image(os.fspath(item))
        if not isinstance(item, np.ndarray):
            raise ImageInputError(f"input {index}: expected a path, an H×W×3 uint8 RGB array or a tensor, "
                                  f"got {type(item).__name__}")
        if item.ndim == 2:
            item = np.repeat(item[:, :, None], 3, axis=2)
        if item.dtype != np.uint8 or item.ndim != 3 or item.shape[2] != 3:
            raise ImageInputError(f"input {index}: expected an H×W×3 uint8 RGB array, got {item.dtype} "
                                  f"{'×'.join(map(str, item.shape))}")
        return torch.from_numpy(self._transform(item))

    def _infer(self, batch: torch.Tensor) -> np.ndarray:
        """Features of a preprocessed B×3×H×W batch, ``TEST.IMS_PER_BATCH`` images per forward."""
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ImageInputError(f"expected a preprocessed B×3×H×W or 3×H×W tensor, got {tuple(batch.shape)}")
        dtype = resolve_amp(self.cfg.TEST.AMP, self.device)
        step = int(self.cfg.TEST.IMS_PER_BATCH)
        chunks: List[torch.Tensor] = []
        for s in range(0, len(batch), step):
            images = batch[s:s + step].to(self.device, dtype=torch.float32)
            chunks.append(infer_batch(self.model, images, bool(self.cfg.TEST.FLIP), dtype,
                                      bool(self.cfg.MODEL.CHANNELS_LAST), normalize=True).cpu())
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)
