"""Training data with targets: each target gets its input's geometric augmentation (resize, pad + crop, flip).

The input goes through the trainer's ``TrainTransform`` with the sample's seed; the target is
resized to the same (training resize) size and replays the same crop and flip with a generator
seeded alike (the transform draws crop row, crop column, then flip, before any photometric draw),
so decoded pixel (y, x) is always compared with the target pixel that saw the same geometry.
Colour jitter and random erasing are photometric/occlusion augmentations of the input only: the
decoder must regress the clean target through them. Targets are RGB in [0, 1], 3×H×W, the
decoder's output size (the training input size).
"""
from __future__ import annotations

from typing import Any, Dict, List

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.dataset import ReIDDataset, build_train_loader, collate
from ..data.image_io import read_image
from ..data.transforms import TrainTransform
from .targets import TARGET_KEY

__all__ = ["SANDataset", "align_target", "build_san_loader", "san_collate"]


def align_target(transform: TrainTransform, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 H×W×3 ``target`` → float32 3×h×w in [0, 1] with the crop and flip ``transform`` draws
    from a generator seeded like ``rng`` (zero padding, as the input's)."""
    h, w = transform.resize
    img = target if target.shape[:2] == (h, w) else cv2.resize(target, (w, h), interpolation=cv2.INTER_AREA)
    img = transform.pad_crop_flip(img, rng)
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) * (1.0 / 255.0)


class SANDataset(ReIDDataset):
    """:class:`ReIDDataset` whose items also hold ``target``, aligned with ``images`` (same seed)."""

    def __getitem__(self, item) -> Dict[str, Any]:
        out = super().__getitem__(item)
        idx, seed = item if isinstance(item, tuple) else (item, 0)
        target = read_image(self.records[idx].attrs[TARGET_KEY])
        out["target"] = torch.from_numpy(align_target(self.transform, target, np.random.default_rng(seed)))
        return out


def san_collate(samples: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The base batch plus ``target`` (B×3×H×W)."""
    return {**collate(samples), "target": torch.stack([s["target"] for s in samples])}


def build_san_loader(cfg, records, rank: int = 0, world_size: int = 1):
    """The P×K training loader of :func:`build_train_loader` over a :class:`SANDataset`: ``(loader, sampler)``."""
    base, sampler = build_train_loader(cfg, records, rank, world_size)
    loader = DataLoader(SANDataset(records, base.dataset.transform), batch_size=base.batch_size, sampler=sampler,
                        num_workers=base.num_workers, collate_fn=san_collate, drop_last=True,
                        persistent_workers=False, pin_memory=base.pin_memory)
    return loader, sampler
