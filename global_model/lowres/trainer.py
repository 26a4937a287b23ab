"""Octuplet fine-tuning (``MODEL.META_ARCH lowres``): the base trainer with a low-resolution twin per image.

Data. Every training image is read once and augmented twice with the same seed (same crop, flip,
erasing): as read (``images``) and degraded by a scale of ``MODEL.LOWRES.SCALES``
(:func:`global_model.data.lowres.degrade`, the make-lr operation; ``lowres``). The twin is made per
batch, on the fly, from the same per-sample seeds, so a resumed run sees the same twins.

Step. ``[images; lowres]`` go through one forward (BatchNorm sees both resolutions together, not
two separate batches as in SNU_ReID); the loss is the octuplet loss on the two halves of
``MODEL.LOWRES.FEATURE`` plus every ``LOSS.*`` term whose weight is > 0, on both halves with the
labels repeated (set a weight to 0 to drop a term). Everything else is the base trainer's: the
``SOLVER`` schedule steps every iteration (SNU_ReID never stepped its), ``--resume`` continues
exactly, and checkpoints go to ``OUTPUT_DIR`` (``last.pth``, ``best.pth``, ``model_final.pth``,
recording ``finetuned_from`` and ``lowres_scales``), which may not be the folder of ``MODEL.WEIGHTS``
when that would overwrite it.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.dataset import ReIDDataset, collate
from ..data.image_io import read_image
from ..data.lowres import LowResUsageError, degrade
from ..engine.amp import autocast
from ..engine.streams import TrainData
from ..engine.trainer import Trainer, register_trainer
from ..modeling import register_arch
from ..modeling.baseline import Baseline
from ..modeling.losses import LOSS_TERMS, build_loss, config_value
from ..modeling.octuplet import OctupletLoss

__all__ = ["FineTuneLoss", "LowResTrainer", "LowResTwinDataset"]

_SCALE_STREAM = 7  # key of the per-sample generator that picks the twin's scale (the augmentation has its own)


@register_arch("lowres")
class LowResNet(Baseline):
    """The baseline architecture under the family's name (a baseline checkpoint loads in full)."""


class LowResTwinDataset(ReIDDataset):
    """Items carry ``lowres``: the image degraded by one of ``scales``, augmented with the item's seed."""

    def __init__(self, records, transform, scales: Sequence[float]):
        super().__init__(records, transform)
        self.scales = [float(s) for s in scales]

    def __getitem__(self, item) -> Dict[str, Any]:
        idx, seed = item if isinstance(item, tuple) else (item, 0)
        rec = self.records[idx]
        image = read_image(rec.path)
        scale = self.scales[int(np.random.default_rng([seed, _SCALE_STREAM]).integers(len(self.scales)))]
        return {"images": torch.from_numpy(self.transform(image, np.random.default_rng(seed))),
                "lowres": torch.from_numpy(self.transform(degrade(image, scale), np.random.default_rng(seed))),
                "pids": rec.pid, "camids": rec.camid, "paths": rec.path}


def collate_twins(samples: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {**collate(samples), "lowres": torch.stack([s["lowres"] for s in samples])}


class FineTuneLoss(nn.Module):
    """``octuplet weight x octuplet(HR half, LR half)`` + the ``LOSS.*`` terms with weight > 0 on both halves."""

    def __init__(self, cfg, num_classes: int, feat_dim: int):
        super().__init__()
        s = cfg.MODEL.LOWRES
        if s.OCTUPLET_WEIGHT < 0:
            raise LowResUsageError(f"MODEL.LOWRES.OCTUPLET_WEIGHT must be >= 0, got {s.OCTUPLET_WEIGHT}")
        others = any(config_value(cfg, cls.weight_key, 0.0) > 0 for _, cls in LOSS_TERMS.items())
        if not others and s.OCTUPLET_WEIGHT == 0:
            raise LowResUsageError("MODEL.LOWRES.OCTUPLET_WEIGHT and every LOSS.* weight are 0: nothing to train on")
        self.base = build_loss(cfg, num_classes, feat_dim) if others else None
        self.octuplet = OctupletLoss(s.OCTUPLET_MARGIN, s.OCTUPLET_DISTANCE, s.OCTUPLET_NORMALIZE, s.OCTUPLET_TERMS)
        self.weight, self.feature = float(s.OCTUPLET_WEIGHT), s.FEATURE

    def forward(self, outputs: dict, batch: dict) -> Tuple[torch.Tensor, Dict[str, float]]:
        pids = batch["pids"]
        total, parts = torch.zeros((), device=pids.device), {}
        if self.base is not None:
            total, parts = self.base(outputs, {"pids": torch.cat([pids, pids])})
        if self.weight > 0:
            value = outputs.get(self.feature)
            if not value:
                raise ValueError(f"MODEL.LOWRES.FEATURE {self.feature!r} is not a model output ({sorted(outputs)})")
            feats = (value if isinstance(value, torch.Tensor) else value[0]).float()
            half = len(pids)
            oct_loss, terms = self.octuplet(feats[:half], feats[half:], pids)
            total = total + self.weight * oct_loss
            parts = {**parts, "octuplet": float(oct_loss.detach()), **{f"oct_{k}": v for k, v in terms.items()}}
        return total, parts


@register_trainer("lowres")
class LowResTrainer(Trainer):
    """The base trainer with low-resolution twins and the octuplet loss; see the module docstring."""

    def __init__(self, cfg, resume: Optional[str] = None, progress: bool = True):
        weights = cfg.MODEL.WEIGHTS
        if not weights:
            raise LowResUsageError("MODEL.META_ARCH lowres fine-tunes a trained model: set MODEL.WEIGHTS to its "
                                   "checkpoint (e.g. outputs/demo/models/r18/model_final.pth)")
        written = ("last.pth", "best.pth", "model_final.pth")
        if os.path.realpath(weights) in {os.path.realpath(os.path.join(cfg.OUTPUT_DIR, n)) for n in written}:
            raise LowResUsageError(f"OUTPUT_DIR {cfg.OUTPUT_DIR!r} would overwrite MODEL.WEIGHTS {weights!r}: "
                                   "give the fine-tuned model its own OUTPUT_DIR")
        for scale in cfg.MODEL.LOWRES.SCALES:
            if not scale >= 1:
                raise LowResUsageError(f"MODEL.LOWRES.SCALES must be scales >= 1, got {list(cfg.MODEL.LOWRES.SCALES)}")
        super().__init__(cfg, resume=resume, progress=progress)

    def build_stream_loader(self, name: str, records: list):
        loader, sampler = super().build_stream_loader(name, records)
        if name != "main":
            return loader, sampler
        twins = LowResTwinDataset(records, loader.dataset.transform, self.cfg.MODEL.LOWRES.SCALES)
        loader = DataLoader(twins, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                            collate_fn=collate_twins, drop_last=True, pin_memory=loader.pin_memory,
                            generator=torch.Generator())
        return loader, sampler

    def build_loss(self, data: TrainData, model: nn.Module) -> nn.Module:
        return FineTuneLoss(self.cfg, data.num_classes, model.feat_dim).to(self.device)

    def to_device(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        batch = super().to_device(batch)
        if self.channels_last:
            batch["lowres"] = batch["lowres"].contiguous(memory_format=torch.channels_last)
        return batch

    def forward_and_loss(self, batch: Dict[str, Any]):
        """One forward over ``[images; lowres]``, then :class:`FineTuneLoss`."""
        with autocast(self.device, self.amp_dtype):
            outputs = self.train_model(torch.cat([batch["images"], batch["lowres"]]))
        loss, parts = self.loss_fn(outputs, batch)
        return outputs, loss, parts

    def weights_state(self) -> Dict[str, Any]:
        return {**super().weights_state(), "finetuned_from": self.cfg.MODEL.WEIGHTS,
                "lowres_scales": [float(s) for s in self.cfg.MODEL.LOWRES.SCALES]}
