"""SAN training: the encoder learns ReID and the semantics-aligned target at once (``MODEL.META_ARCH san``).

Data. The ``DATASETS.TRAIN`` records get their targets (:mod:`.targets`, ``MODEL.SAN.TARGET``)
and the main P×K loader yields them as ``batch["target"]``, augmented with the input's crop and
flip (:mod:`.data`).

Model. The :class:`~global_model.san.model.SADecoder` is the trainer's auxiliary module
``decoder``: the base trainer wraps and checkpoints it (``aux/decoder``), so ``extract`` loads a
SAN checkpoint like any global model and the panels command finds the decoder. It is in the main,
scheduled optimizer unless ``MODEL.SAN.DECODER_LR`` > 0 gives it its own Adam. Each step is one
forward and **one backward** of :class:`~global_model.san.losses.SANLoss` (ReID + reconstruction +
decoder triplet) into encoder and decoder.
"""
from __future__ import annotations

import logging
from typing import Any, Dict

import torch
from torch import nn

from ..engine.solver import OptimizerSpec
from ..engine.streams import TrainData
from ..engine.trainer import Trainer, register_trainer
from .data import build_san_loader
from .losses import SANLoss
from .model import SAN, build_decoder
from .targets import attach_targets

__all__ = ["SANTrainer", "san_forward"]

logger = logging.getLogger("global_model.train")


def san_forward(model: nn.Module, aux: nn.ModuleDict, images: torch.Tensor) -> Dict[str, Any]:
    """The model's train outputs plus the ``decoded`` images and the four ``decoder_maps``."""
    out = model(images)
    out["decoded"], out["decoder_maps"] = aux["decoder"](out.pop("san_maps"), images.shape[-2:])
    return out


@register_trainer("san")
class SANTrainer(Trainer):
    """The base trainer with SAN's targets, decoder and objective."""

    train_forward = staticmethod(san_forward)

    def build_train_records(self) -> TrainData:
        data = super().build_train_records()
        records = attach_targets(self.cfg, data.records)
        logger.info("SAN: %d training images with %s targets", len(records), self.cfg.MODEL.SAN.TARGET)
        return TrainData(records, data.num_classes, data.streams)

    def build_stream_loader(self, name: str, records: list):
        if name != "main":
            return super().build_stream_loader(name, records)
        loader, sampler = build_san_loader(self.cfg, records, self.rank, self.world_size)
        loader.generator = torch.Generator()  # reseeded per epoch, as the base trainer's
        return loader, sampler

    def build_model(self, data: TrainData) -> nn.Module:
        model = super().build_model(data)
        if not isinstance(model, SAN):
            raise ValueError(f"the SAN trainer needs MODEL.META_ARCH san, got a {type(model).__name__}")
        return model

    def build_aux_modules(self, model: nn.Module) -> Dict[str, nn.Module]:
        return {"decoder": build_decoder(self.cfg, model)}

    def build_extra_optimizers(self, aux: Dict[str, nn.Module], loss_fn: nn.Module) -> Dict[str, OptimizerSpec]:
        extra = super().build_extra_optimizers(aux, loss_fn)
        lr = self.cfg.MODEL.SAN.DECODER_LR
        if lr > 0:
            extra["decoder"] = OptimizerSpec(torch.optim.Adam(aux["decoder"].parameters(), lr=lr, betas=(0.5, 0.999)))
        return extra

    def build_loss(self, data: TrainData, model: nn.Module) -> nn.Module:
        return SANLoss(self.cfg, data.num_classes, model.feat_dim).to(self.device)
