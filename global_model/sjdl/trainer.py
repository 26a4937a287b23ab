"""SJDL training: the encoder learns ReID and defogging at once (``MODEL.META_ARCH sjdl``).

Data. ``DATASETS.TRAIN`` records with ``attrs["domain"] == "real"`` (e.g. from
``fvrid(split=both)``) form the ``real`` stream; all others form the main stream, whose records
with a clear twin (``clear_path``) drive the restoration loss. The dataset augments a foggy image
and its clear twin with the same seed, so crop, flip and erasing keep them pixel-aligned. Every
``MODEL.SJDL.REAL_PERIOD``-th main batch carries a real-fog batch along, its images appended to
``images`` and its labels in ``real_pids`` (one forward over both, so DDP sees one forward per
backward). Main ids are ``0..S-1`` and real ids ``S..C-1``: the two row blocks of the classifier.

Model. The :class:`~global_model.sjdl.model.DefogDecoder` is the trainer's auxiliary module
``decoder``: the base trainer optimises, wraps and checkpoints it (``aux/decoder``), so ``extract``
loads an SJDL checkpoint like any global model and ``defog`` finds the decoder.

Evaluation. Besides mAP on ``DATASETS.TEST``, every evaluation scores PSNR/SSIM of the foggy
input, the decoded and the enhanced image against the clear twin on ``MODEL.SJDL.VAL_PAIRS`` and
writes ``OUTPUT_DIR/defog_vis/epoch_XXX_<name>.png`` panels (foggy | decoded | enhanced | clear).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch import nn

from ..data.datasets import DatasetError, merge_train_sets
from ..data.records import ImageRecord
from ..engine.amp import autocast, resolve_amp
from ..engine.restore import unit_to_uint8
from ..engine.streams import Stream, TrainData
from ..engine.trainer import Trainer, register_trainer
from .losses import SJDLLoss
from .metrics import format_restoration, psnr, ssim, write_panels
from .model import SJDL, build_defog_decoder, defog, to_unit_range

__all__ = ["SJDLTrainer", "join_real_batch"]

logger = logging.getLogger("global_model.train")


def join_real_batch(batch: Dict[str, Any], name: str, real: Dict[str, Any]) -> Dict[str, Any]:
    """Real-fog rows appended to ``images``, labelled by ``real_pids`` (paths in ``real_paths``)."""
    return {**batch, "images": torch.cat([batch["images"], real["images"]]), "real_pids": real["pids"],
            "real_paths": real["paths"]}


@register_trainer("sjdl")
class SJDLTrainer(Trainer):
    """The base trainer with SJDL's two data streams, its decoder, its objective and restoration validation."""

    def __init__(self, cfg, resume: Optional[str] = None, progress: bool = True):
        super().__init__(cfg, resume=resume, progress=progress)
        self._val_pairs: Optional[List[ImageRecord]] = None

    # ------------------------------------------------------------------ data
    def build_train_records(self) -> TrainData:
        s = self.cfg.MODEL.SJDL
        records = super().build_train_records().records
        main = [r for r in records if r.attrs.get("domain") != "real"]
        real = [r for r in records if r.attrs.get("domain") == "real"]
        if not any(r.clear_path for r in main):
            raise DatasetError(f"MODEL.META_ARCH sjdl needs clear/foggy training pairs, but no record of "
                               f"DATASETS.TRAIN {list(self.cfg.DATASETS.TRAIN)} has a clear twin; "
                               f"use e.g. 'fvrid(split=both)=DIR'")
        if real and s.REAL_PERIOD <= 0:
            logger.info("MODEL.SJDL.REAL_PERIOD %d: the %d real-fog training images are not used",
                        s.REAL_PERIOD, len(real))
            real = []
        merged, num_classes = merge_train_sets([main, real])
        main_ids = len({r.pid for r in main})
        logger.info("SJDL: %d main images (%d ids, %d with a clear twin), %d real-fog images (%d ids)", len(main),
                    main_ids, sum(bool(r.clear_path) for r in main), len(real), num_classes - main_ids)
        streams = {}
        if real:
            streams["real"] = Stream(merged[len(main):], s.REAL_PERIOD, num_classes - main_ids, join_real_batch)
        return TrainData(merged[:len(main)], num_classes, streams)

    # ------------------------------------------------------------------ model, decoder, loss
    def build_model(self, data: TrainData) -> nn.Module:
        model = super().build_model(data)
        if not isinstance(model, SJDL):
            raise ValueError(f"the SJDL trainer needs MODEL.META_ARCH sjdl, got a {type(model).__name__}")
        return model

    def build_aux_modules(self, model: nn.Module) -> Dict[str, nn.Module]:
        return {"decoder": build_defog_decoder(self.cfg, model)}

    @staticmethod
    def train_forward(model: nn.Module, aux: nn.ModuleDict, images: torch.Tensor) -> Dict[str, Any]:
        """The model's train outputs plus the ``decoded`` and ``enhanced`` images of every input row."""
        out = model(images)
        stem, layer1 = out.pop("defog_maps")
        out["decoded"], out["enhanced"] = aux["decoder"](stem, layer1, images)
        return out

    def build_loss(self, data: TrainData, model: nn.Module) -> nn.Module:
        return SJDLLoss(self.cfg, data.main_ids, data.num_classes - data.main_ids, model.feat_dim).to(self.device)

    # ------------------------------------------------------------------ evaluation
    def validation_pairs(self) -> List[ImageRecord]:
        """Query + gallery records of ``MODEL.SJDL.VAL_PAIRS`` that have a clear twin, at most
        ``MODEL.SJDL.VAL_MAX`` of them, evenly spaced (empty when ``VAL_PAIRS`` is unset)."""
        if self._val_pairs is None:
            from ..data.dataset import clear_twin_records, evenly_spaced

            s = self.cfg.MODEL.SJDL
            records: List[ImageRecord] = []
            if s.VAL_PAIRS:
                records = evenly_spaced(clear_twin_records(s.VAL_PAIRS, self.cfg, "MODEL.SJDL.VAL_PAIRS"), s.VAL_MAX)
            self._val_pairs = records
        return self._val_pairs

    def restoration_metrics(self, tag: str = "") -> Optional[Dict[str, float]]:
        """Mean PSNR/SSIM of the foggy input, decoded and enhanced images vs the clear twins of
        :meth:`validation_pairs`; writes ``MODEL.SJDL.VIS_NUM`` panels named after ``tag`` when ``VIS``."""
        from ..data.dataset import build_test_loader

        records = self.validation_pairs()
        if not records:
            return None
        cfg, s = self.cfg, self.cfg.MODEL.SJDL
        decoder = self.aux["decoder"]
        mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
        dtype = resolve_amp(cfg.TEST.AMP, self.device)
        scores: Dict[str, List[torch.Tensor]] = {f"{m}_{k}": [] for m in ("psnr", "ssim")
                                                 for k in ("foggy", "decoded", "enhanced")}
        panels: List[np.ndarray] = []
        modes = (self.model.training, decoder.training)
        self.model.eval()
        decoder.eval()
        try:
            with torch.inference_mode():
                for batch in build_test_loader(cfg, records):
                    images = batch["images"].to(self.device)
                    with autocast(self.device, dtype):
                        decoded, enhanced = defog(self.model, decoder, images)
                    clear = to_unit_range(batch["clear"].to(self.device), mean, std)
                    shown = {"foggy": to_unit_range(images, mean, std), "decoded": decoded.float(),
                             "enhanced": enhanced.float()}
                    for kind, img in shown.items():
                        scores[f"psnr_{kind}"].append(psnr(img, clear).cpu())
                        scores[f"ssim_{kind}"].append(ssim(img, clear).cpu())
                    wanted = s.VIS_NUM - len(panels) if s.VIS else 0
                    for i in range(min(len(images), wanted)):
                        row = [shown["foggy"][i], shown["decoded"][i], shown["enhanced"][i], clear[i]]
                        panels.append(np.concatenate([unit_to_uint8(t) for t in row], axis=1))
        finally:
            self.model.train(modes[0])
            decoder.train(modes[1])
        if panels:
            write_panels(os.path.join(cfg.OUTPUT_DIR, "defog_vis"), panels, records, tag)
        return {k: float(torch.cat(v).mean()) for k, v in scores.items()}

    def validate(self) -> Optional[Dict[str, float]]:
        metrics = super().validate()
        rest = self.restoration_metrics(f"epoch_{self.epoch:03d}")
        if rest:
            self.last_metrics.update(rest)
            self.log_scalars({f"val/{k}": v for k, v in rest.items()})
            logger.info("restoration epoch %d: %s", self.epoch, format_restoration(rest, len(self.validation_pairs())))
        return metrics

    def train(self) -> Dict[str, float]:
        metrics = super().train()
        if self.is_main and "psnr_decoded" in metrics:
            logger.info("SJDL final %s", format_restoration(metrics, len(self.validation_pairs())))
        return metrics
