"""One RVSL stage (``MODEL.RVSL.STAGE``) on the base trainer's seams; ``schedule.py`` chains the stages.

Data. ``DATASETS.TRAIN`` gives the synthetic clear/foggy pairs (the main P×K stream; records need a
``clear_path``). ``MODEL.RVSL.VAL_IDS`` of their identities (drawn from ``SOLVER.SEED``) are held
out: validation (and so ``best.pth``) ranks their foggy images against their clear twins, never the
test split. Stage 2 joins a batch of ``MODEL.RVSL.REAL_CLEAR``'s training images to every step
(``batch["real_clear"]``), stage 3 one of ``MODEL.RVSL.REAL_HAZY`` (``batch["real_hazy"]``):
unlabelled streams with a :class:`~global_model.rvsl.sampler.ShuffleSampler`, re-iterated (re-read
and re-augmented) whenever they run out, and re-created every epoch by the stream loader.

Modules. The translators ``to_clear``/``to_hazy`` are auxiliary modules trained by the main,
scheduled optimizer (per-iteration warm-up and decay) with the model; the discriminators
``disc_clear``/``disc_hazy`` have their own Adam (``MODEL.RVSL.DISC_LR``/``DISC_BETAS``, linear decay
to 0 from ``DISC_DECAY_START`` of the stage's iterations) stepped after the generator step, each on
its own domain's real images against replayed generated ones (:class:`~.model.ImagePool`, part
of the checkpoint so a resume is exact). The generator step runs with the discriminators frozen;
the discriminator step sees detached images, so neither step changes the other's weights.

Start of a stage: ``MODEL.RVSL.INIT`` (the previous stage's checkpoint) loads the model, the
translators and the discriminators; the ID classifier is carried when
``MODEL.RVSL.CARRY_CLASSIFIER`` (the synthetic ids are the same in every stage), else it keeps its
fresh initialisation (what the published code does by renaming the layer).

Single process only (the stage's several forwards per step are not wrapped for DDP).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from ..data.datasets import DatasetError, DatasetSplits, merge_train_sets
from ..data.records import ImageRecord
from ..engine.amp import autocast
from ..engine.checkpoint import CheckpointError, load_checkpoint, load_model_weights
from ..engine.solver import OptimizerSpec
from ..engine.streams import Stream, TrainData
from ..engine.trainer import Trainer, to_float
from .config import RVSLConfigError, check_rvsl_config
from .losses import REAL_STREAM, RVSLLoss, discriminator_loss, discriminator_pairs, generator_outputs
from .model import RVSL, ImagePool, PatchDiscriminator, Translator
from .restoration import restoration_metrics
from .sampler import ShuffleSampler

__all__ = ["DISCRIMINATORS", "RVSLTrainer", "held_out_split"]

logger = logging.getLogger("global_model.train")

DISCRIMINATORS = ("disc_clear", "disc_hazy")
_STREAM_KEYS = {"real_clear": "REAL_CLEAR", "real_hazy": "REAL_HAZY"}


def held_out_split(records: List[ImageRecord]) -> Tuple[List[ImageRecord], List[ImageRecord]]:
    """Validation query/gallery of held-out paired records: per identity and camera the first foggy
    image is a query; the gallery is the clear twin of every image (the protocol ignores a query's
    own camera), so foggy queries are ranked against clear views, as in the benchmark."""
    query: List[ImageRecord] = []
    seen = set()
    ordered = sorted(records, key=lambda r: r.path)
    for r in ordered:
        if (r.pid, r.camid) not in seen:
            seen.add((r.pid, r.camid))
            query.append(r)
    return query, [ImageRecord(r.clear_path, r.pid, r.camid, r.trackid) for r in ordered]


class RVSLTrainer(Trainer):
    """The base trainer with RVSL's streams, translators, discriminators, stage objective and validation."""

    def __init__(self, cfg, resume: Optional[str] = None, progress: bool = True):
        check_rvsl_config(cfg)
        if dist.is_initialized() and dist.get_world_size() > 1:
            raise RVSLConfigError("MODEL.META_ARCH rvsl trains in one process (no torchrun)")
        self.stage = int(cfg.MODEL.RVSL.STAGE)
        self.pools = {name: ImagePool(cfg.MODEL.RVSL.POOL_SIZE) for name in DISCRIMINATORS}
        self._held_out: List[ImageRecord] = []
        self._resumed = False
        super().__init__(cfg, resume=resume, progress=progress)
        if not self._resumed and cfg.MODEL.RVSL.INIT:
            self.init_from(cfg.MODEL.RVSL.INIT)

    # ------------------------------------------------------------------ data
    def build_train_records(self) -> TrainData:
        cfg, r = self.cfg, self.cfg.MODEL.RVSL
        records = super().build_train_records().records
        pairs = [rec for rec in records if rec.clear_path]
        if not pairs:
            raise DatasetError(f"MODEL.META_ARCH rvsl needs synthetic clear/foggy pairs, but no record of DATASETS.TRAIN "
                               f"{list(cfg.DATASETS.TRAIN)} has a clear twin; use e.g. 'fvrid(split=syn)=fvrid'")
        if r.VAL_IDS:
            ids = sorted({rec.pid for rec in pairs})
            if r.VAL_IDS >= len(ids):
                raise RVSLConfigError(f"MODEL.RVSL.VAL_IDS {r.VAL_IDS} leaves no training ids (there are {len(ids)})")
            held = set(np.random.default_rng([cfg.SOLVER.SEED, 15]).choice(ids, r.VAL_IDS, replace=False).tolist())
            self._held_out = [rec for rec in pairs if rec.pid in held]
            pairs = [rec for rec in pairs if rec.pid not in held]
        pairs, num_classes = merge_train_sets([pairs])
        streams = {}
        if self.stage in REAL_STREAM:
            name = REAL_STREAM[self.stage]
            streams[name] = Stream(self.real_records(name), period=1, num_ids=0)
        if self.is_main:
            logger.info("RVSL stage %d: %d synthetic pairs (%d ids, %d held-out ids for validation)%s", self.stage,
                        len(pairs), num_classes, r.VAL_IDS,
                        "".join(f", {len(s.records)} unlabelled {n} images" for n, s in streams.items()))
        return TrainData(pairs, num_classes, streams)

    def real_records(self, name: str) -> List[ImageRecord]:
        """The training images of the real stream ``name`` (labels ignored)."""
        from ..data.dataset import load_dataset_spec

        key = _STREAM_KEYS[name]
        spec = self.cfg.MODEL.RVSL[key]
        if not spec:
            raise RVSLConfigError(f"MODEL.RVSL.{key} is empty; stage {self.stage} needs its real images")
        records = load_dataset_spec(spec, self.cfg).train
        if not records:
            raise DatasetError(f"MODEL.RVSL.{key} {spec!r}: no training images")
        return records

    def build_stream_loader(self, name: str, records: list):
        if name == "main":
            return super().build_stream_loader(name, records)
        from ..data.dataset import ReIDDataset, collate
        from ..data.transforms import build_transforms

        cfg = self.cfg
        sampler = ShuffleSampler(len(records), cfg.MODEL.RVSL.REAL_BATCH, cfg.SOLVER.SEED,
                                 f"MODEL.RVSL.{_STREAM_KEYS[name]} {cfg.MODEL.RVSL[_STREAM_KEYS[name]]!r}")
        loader = DataLoader(ReIDDataset(records, build_transforms(cfg, is_train=True)),
                            batch_size=cfg.MODEL.RVSL.REAL_BATCH, sampler=sampler,
                            num_workers=cfg.DATALOADER.NUM_WORKERS, collate_fn=collate, drop_last=True,
                            pin_memory=torch.cuda.is_available(), generator=torch.Generator())
        return loader, sampler

    # ------------------------------------------------------------------ modules, loss, optimizers
    def build_model(self, data: TrainData) -> nn.Module:
        model = super().build_model(data)
        if not isinstance(model, RVSL):
            raise RVSLConfigError(f"the RVSL trainer needs MODEL.META_ARCH rvsl, got a {type(model).__name__}")
        return model

    def build_aux_modules(self, model: nn.Module) -> Dict[str, nn.Module]:
        r = self.cfg.MODEL.RVSL
        return {"to_clear": Translator(model.layer1_channels, model.skip_channels, r.WIDTH),
                "to_hazy": Translator(model.layer1_channels, model.skip_channels, r.WIDTH),
                "disc_clear": PatchDiscriminator(r.DISC_WIDTH), "disc_hazy": PatchDiscriminator(r.DISC_WIDTH)}

    def build_extra_optimizers(self, aux: Dict[str, nn.Module], loss_fn: nn.Module) -> Dict[str, OptimizerSpec]:
        r = self.cfg.MODEL.RVSL
        return {**super().build_extra_optimizers(aux, loss_fn),
                **{name: OptimizerSpec(torch.optim.Adam(aux[name].parameters(), lr=r.DISC_LR,
                                                        betas=tuple(r.DISC_BETAS)), joint=False)
                   for name in DISCRIMINATORS}}

    def build_loss(self, data: TrainData, model: nn.Module) -> nn.Module:
        return RVSLLoss(self.cfg, data.num_classes, model.feat_dim).to(self.device)

    # ------------------------------------------------------------------ one step
    def forward_and_loss(self, batch: Dict[str, Any]) -> Tuple[Any, torch.Tensor, Dict[str, float]]:
        mean, std = self.cfg.INPUT.PIXEL_MEAN, self.cfg.INPUT.PIXEL_STD
        with autocast(self.device, self.amp_dtype):
            out = generator_outputs(self.model, self.aux, batch, self.stage, mean, std)
        out = to_float(out)
        loss, parts, _ = self.loss_fn(out, batch["pids"])
        return out, loss, parts

    def _set_disc_lr(self) -> None:
        r = self.cfg.MODEL.RVSL
        total = self.scheduler.total
        start = r.DISC_DECAY_START * total
        factor = 1.0 if self.iteration < start else max(0.0, (total - self.iteration) / max(1.0, total - start))
        for name in DISCRIMINATORS:
            for group in self.optimizers[name].optimizer.param_groups:
                group["lr"] = r.DISC_LR * factor

    def generator_step(self, batch: Dict[str, Any]) -> Tuple[Dict, torch.Tensor, Dict[str, float]]:
        """Generator (model + translators) update with the discriminators frozen."""
        discs = [self.aux[name] for name in DISCRIMINATORS]
        for d in discs:
            d.requires_grad_(False)
        try:
            out, loss, parts = self.forward_and_loss(batch)
            self.backward_and_step(loss, self.joint_optimizers())
        finally:
            for d in discs:
                d.requires_grad_(True)
        return out, loss, parts

    def discriminator_step(self, out: Dict) -> Dict[str, float]:
        """One update of each discriminator on its domain's real images vs replayed generated ones."""
        parts = {}
        for name, (real, fake) in discriminator_pairs(out, self.stage).items():
            fake = self.pools[name].query(fake.detach())
            with autocast(self.device, self.amp_dtype):
                loss = discriminator_loss(self.aux[name], real, fake)
            self.backward_and_step(loss, [name])
            parts[name] = float(loss.detach())
        return parts

    def run_step(self, batch: Dict[str, Any]) -> Dict[str, float]:
        batch = self.to_device(batch)
        self._set_disc_lr()
        out, loss, parts = self.generator_step(batch)
        parts.update(self.discriminator_step(out))
        self.scaler.update()
        return {"loss": float(loss.detach()), **parts}

    # ------------------------------------------------------------------ validation
    def validation_split(self):
        if not self._held_out:
            return super().validation_split()
        if self._val_split is None:
            query, gallery = held_out_split(self._held_out)
            self._val_set = DatasetSplits("rvsl_held_out", self.cfg.OUTPUT_DIR, [], query, gallery,
                                          protocol_label=f"{self.cfg.MODEL.RVSL.VAL_IDS} held-out training ids, "
                                                         f"foggy queries vs clear twins: Market-1501 rules")
            self._val_split = (query, gallery)
        return self._val_split

    def restoration_pairs(self) -> List[ImageRecord]:
        """``MODEL.RVSL.VAL_PAIRS``' query + gallery pairs, else the held-out pairs; at most ``VAL_MAX``."""
        from ..data.dataset import clear_twin_records, evenly_spaced

        r = self.cfg.MODEL.RVSL
        records = clear_twin_records(r.VAL_PAIRS, self.cfg, "MODEL.RVSL.VAL_PAIRS") if r.VAL_PAIRS else self._held_out
        return evenly_spaced(records, r.VAL_MAX)

    def validate(self) -> Optional[Dict[str, float]]:
        metrics = super().validate()
        pairs = self.restoration_pairs()
        if pairs:
            r = self.cfg.MODEL.RVSL
            rest, line = restoration_metrics(self.model, self.aux, pairs, self.cfg, self.device,
                                             os.path.join(self.cfg.OUTPUT_DIR, "defog_vis") if r.VIS else None,
                                             r.VIS_NUM, f"epoch_{self.epoch:03d}")
            self.last_metrics.update(rest)
            self.log_scalars({f"val/{k}": v for k, v in rest.items()})
            logger.info("restoration stage %d epoch %d: %s", self.stage, self.epoch, line)
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> Dict[str, Any]:
        return {**super().state_dict(), "pools": {name: pool.state_dict() for name, pool in self.pools.items()}}

    def resume(self, path: str) -> None:
        if path == "auto":
            path = os.path.join(self.cfg.OUTPUT_DIR, "last.pth")
            if not os.path.isfile(path):
                logger.info("--resume auto: no %s yet, stage %d starts afresh", path, self.stage)
                return
        super().resume(path)
        pools = load_checkpoint(path).get("pools")
        if pools is None:
            raise CheckpointError(f"{path}: no 'pools' entry; it was not written by the RVSL trainer")
        for name, pool in self.pools.items():
            pool.load_state_dict(pools[name], self.device)
        self._resumed = True

    def init_from(self, path: str) -> None:
        """Start the stage from another stage's checkpoint (see the module docstring)."""
        ckpt = load_checkpoint(path)
        if ckpt.get("meta_arch") != "rvsl":
            raise CheckpointError(f"MODEL.RVSL.INIT {path}: not an RVSL checkpoint (meta_arch "
                                  f"{ckpt.get('meta_arch')!r})")
        state = dict(ckpt["model"])
        own = self.model.state_dict()["classifier.weight"]
        carried = self.cfg.MODEL.RVSL.CARRY_CLASSIFIER and tuple(state["classifier.weight"].shape) == tuple(own.shape)
        if not carried:
            state["classifier.weight"] = own.clone()
        load_model_weights(self.model, state, source=f"MODEL.RVSL.INIT {path}")
        stored = ckpt.get("aux") or {}
        for name, module in self.aux.items():
            if name not in stored:
                raise CheckpointError(f"MODEL.RVSL.INIT {path}: no 'aux/{name}' entry")
            load_model_weights(module, stored[name], source=f"MODEL.RVSL.INIT {path} (aux/{name})")
        if self.is_main:
            logger.info("RVSL stage %d starts from %s (ID classifier %s)", self.stage, path,
                        "carried" if carried else "re-initialised")
