"""The training loop: one ``Trainer`` class with declared seams, and a registry by ``MODEL.META_ARCH``.

A model family subclasses ``Trainer`` and registers it with ``@register_trainer(name)`` in its
package (found by :func:`global_model.families.discover_family`); architectures without their own
trainer use ``Trainer``. The seams, each handled once here:

- ``build_train_records() -> TrainData``: main records, classifier size and extra data streams
  (:mod:`global_model.engine.streams`), each stream with its own loader, joined into the main batches;
- ``build_aux_modules(model) -> {name: module}``: decoders, generators, discriminators. They go to
  the device, into the main optimizer (unless an extra optimizer claims them), into one
  :class:`TrainNet` with the model (one DDP wrapper; ``train_forward`` says how they run) and into
  checkpoints under ``aux/<name>``;
- ``build_extra_optimizers(aux, loss_fn) -> {name: OptimizerSpec}``: optimizers beside the main,
  scheduled one (by default those the loss terms declare, e.g. the class centres' SGD). Joint ones
  step after every backward of the main loss; others are the family's to step in ``run_step``
  with :meth:`Trainer.backward_and_step`. Each one's state is checkpointed and resumed.

Builders receive what they depend on as arguments and return values; none reads an attribute
another builder set.

Reproducibility: the model is built right after seeding, the epoch order and every sample's
augmentation derive from ``(SOLVER.SEED, epoch)``, and checkpoints hold every optimizer,
scheduler, scaler, sampler and RNG state, so ``--resume`` from ``last.pth`` ends with the same
weights as an uninterrupted run (bitwise on CPU, where deterministic algorithms are enforced).
"""
from __future__ import annotations

import logging
import os
import random
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from post_processing.registry import Registry

from ..data.image_io import ImageReadError, clean_read_error
from ..families import discover_family
from .amp import autocast, needs_grad_scaler, resolve_amp, resolve_device
from .checkpoint import (CheckpointError, capture_rng_state, load_checkpoint, load_matching_weights, load_model_weights,
                         restore_rng_state, save_checkpoint)
from .extractor import extract_features
from .solver import OptimizerSpec, WarmupScheduler, build_optimizer, param_groups
from .streams import StreamLoader, TrainData

__all__ = ["TRAINERS", "TrainNet", "Trainer", "build_trainer", "register_trainer", "seed_everything"]

logger = logging.getLogger("global_model.train")

TRAINERS: Registry = Registry("trainer", discover=discover_family)


def register_trainer(name: str):
    """Class decorator: use this Trainer subclass for ``MODEL.META_ARCH == name``."""
    return TRAINERS.register(name)


def build_trainer(cfg, **kwargs) -> "Trainer":
    """The trainer registered for ``cfg.MODEL.META_ARCH`` (its family imported on demand), else ``Trainer``."""
    return (TRAINERS.find(cfg.MODEL.META_ARCH) or Trainer)(cfg, **kwargs)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def to_float(x: Any) -> Any:
    """Floating tensors (also inside dicts/lists) as float32, so losses run outside autocast."""
    if isinstance(x, torch.Tensor):
        return x.float() if x.is_floating_point() else x
    if isinstance(x, dict):
        return {k: to_float(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_float(v) for v in x)
    return x


def model_forward(model: nn.Module, aux: nn.ModuleDict, images: torch.Tensor) -> Any:
    """The default training forward: the model alone (auxiliary modules run where the family calls them)."""
    return model(images)


class TrainNet(nn.Module):
    """The model and the auxiliary modules as the one module a training step runs (and DDP wraps);
    ``forward(images)`` is the trainer's ``train_forward(model, aux, images)``."""

    def __init__(self, model: nn.Module, aux: Dict[str, nn.Module],
                 forward: Callable[[nn.Module, nn.ModuleDict, torch.Tensor], Any]):
        super().__init__()
        self.model, self.aux = model, nn.ModuleDict(aux)
        self._forward = forward

    def forward(self, images: torch.Tensor) -> Any:
        return self._forward(self.model, self.aux, images)


class Trainer:
    """Builds data, model, auxiliary modules, loss, optimizers and schedule from ``cfg`` and trains
    for ``SOLVER.MAX_EPOCHS``.

    ``OUTPUT_DIR`` receives ``last.pth`` (every ``CHECKPOINT_PERIOD`` epochs and at the end),
    ``best.pth`` (best validation mAP), ``model_final.pth`` (weights + config) and ``tb/``.
    """

    train_forward = staticmethod(model_forward)

    def __init__(self, cfg, resume: Optional[str] = None, progress: bool = True):
        self.cfg = cfg
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world_size = dist.get_world_size() if dist.is_initialized() else 1
        self.is_main = self.rank == 0
        self.progress = progress and self.is_main
        self.device = self.build_device()
        seed_everything(cfg.SOLVER.SEED)
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.channels_last = bool(cfg.MODEL.CHANNELS_LAST)
        self.data = self.build_train_records()
        self.train_records, self.num_classes = self.data.records, self.data.num_classes
        self.train_loader, self.sampler = self.build_train_loader(self.data)
        self.model = self.build_model(self.data)
        self.aux = {name: self._place(module) for name, module in self.build_aux_modules(self.model).items()}
        self.loss_fn = self.build_loss(self.data, self.model)
        self.optimizers = self.build_optimizers(self.model, self.aux, self.loss_fn)
        self.optimizer = self.optimizers["main"].optimizer
        self.scheduler = WarmupScheduler(self.optimizer, cfg, self.epoch_iterations())
        self.amp_dtype = resolve_amp(cfg.SOLVER.AMP, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=needs_grad_scaler(self.amp_dtype, self.device))
        net = TrainNet(self.model, self.aux, self.train_forward) if self.aux else self.model
        self.train_model = self.wrap_distributed(net)
        self.epoch = 0  # last finished epoch
        self.iteration = 0
        self.best_map = -1.0
        self.best_epoch: Optional[int] = None  # epoch of best.pth (None: no validation yet, or not recorded)
        self.last_metrics: Dict[str, float] = {}
        self._val_split: Optional[Tuple[list, list]] = None
        self._val_set = None  # the loaded DATASETS.TEST: its protocol and notes
        self._val_noted = False
        self._writer = None
        if resume:
            self.resume(resume)
        if self.is_main:
            logger.info("%d training images, %d ids, %d iterations/epoch, AMP %s, device %s", len(self.train_records),
                        self.num_classes, len(self.train_loader), self.amp_dtype or "off", self.device)

    # ------------------------------------------------------------------ builders (override points)
    def build_device(self) -> torch.device:
        device = resolve_device(self.cfg.MODEL.DEVICE)
        if device.type == "cuda" and self.world_size > 1:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return device

    def build_train_records(self) -> TrainData:
        """``DATASETS.TRAIN`` merged with disjoint ids, as the main stream; no extra stream."""
        from ..data.dataset import build_train_records

        records, num_classes = build_train_records(self.cfg)
        return TrainData(records, num_classes)

    def build_train_loader(self, data: TrainData):
        """``(loader, main sampler)``: the main P×K loader, joined with a loader per extra stream."""
        from ..data.datasets import DatasetError

        loader, sampler = self.build_stream_loader("main", data.records)
        if not data.streams:
            return loader, sampler
        loaders = {}
        for name, stream in data.streams.items():
            try:
                loaders[name] = self.build_stream_loader(name, stream.records)
            except ValueError as exc:
                raise DatasetError(f"training stream {name!r}: {exc}") from None
        return StreamLoader(loader, sampler, data.streams, loaders, self.cfg.SOLVER.SEED), sampler

    def build_stream_loader(self, name: str, records: list):
        """``(loader, sampler)`` of stream ``name`` ("main" or an extra stream's): P×K batches (override
        for e.g. an unlabelled stream). The sampler needs ``set_epoch``; the loader's generator is
        reseeded every epoch."""
        from ..data.dataset import build_train_loader

        loader, sampler = build_train_loader(self.cfg, records, self.rank, self.world_size)
        loader.generator = torch.Generator()  # reseeded per epoch: worker seeds follow (seed, epoch)
        return loader, sampler

    def build_model(self, data: TrainData) -> nn.Module:
        """The ``MODEL.META_ARCH`` model, started from the ``MODEL.WEIGHTS`` checkpoint when set."""
        from ..modeling import build_model

        model = build_model(self.cfg, data.num_classes)
        if self.cfg.MODEL.WEIGHTS:
            load_matching_weights(model, self.cfg.MODEL.WEIGHTS)
        return self._place(model)

    def build_aux_modules(self, model: nn.Module) -> Dict[str, nn.Module]:
        """Training-time modules beside the model (decoders, generators, discriminators); none here."""
        return {}

    def build_loss(self, data: TrainData, model: nn.Module) -> nn.Module:
        from ..modeling.losses import build_loss

        return build_loss(self.cfg, data.num_classes, model.feat_dim).to(self.device)

    def build_extra_optimizers(self, aux: Dict[str, nn.Module], loss_fn: nn.Module) -> Dict[str, OptimizerSpec]:
        """Optimizers beside the main one; by default those the loss terms declare (class centres)."""
        from ..modeling.losses import loss_optimizers

        return loss_optimizers(loss_fn, self.cfg)

    def build_optimizers(self, model: nn.Module, aux: Dict[str, nn.Module],
                         loss_fn: nn.Module) -> Dict[str, OptimizerSpec]:
        """``"main"`` (``SOLVER.OPTIMIZER``, scheduled) over the model, the loss's parameters and the
        auxiliary modules, in that group order, leaving out what the extra optimizers claim; then those."""
        extra = self.build_extra_optimizers(aux, loss_fn)
        if "main" in extra:
            raise ValueError("an extra optimizer may not be called 'main'")
        claimed = {id(p) for spec in extra.values() for p in spec.params()}
        groups = param_groups(model, self.cfg, skip=claimed)
        others = [p for p in loss_fn.parameters() if p.requires_grad and id(p) not in claimed]
        if others:
            groups.append({"params": others, "lr_factor": 1.0, "weight_decay": self.cfg.SOLVER.WEIGHT_DECAY,
                           "lr": self.cfg.SOLVER.BASE_LR})
        for module in aux.values():
            groups += param_groups(module, self.cfg, backbone_prefixes=(), skip=claimed)
        return {"main": OptimizerSpec(build_optimizer(groups, self.cfg)), **extra}

    def epoch_iterations(self) -> List[int]:
        """The iterations of epochs 1..``SOLVER.MAX_EPOCHS`` (the main sampler's batches), sizing the
        schedule: on a small set the P×K sampler's count varies between epochs."""
        return [self.sampler.batches_in_epoch(e) for e in range(1, self.cfg.SOLVER.MAX_EPOCHS + 1)]

    def wrap_distributed(self, model: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def _place(self, module: nn.Module) -> nn.Module:
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    # ------------------------------------------------------------------ training
    def to_device(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        out = {k: (self.to_device(v) if isinstance(v, dict) else
                   v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
               for k, v in batch.items()}
        if self.channels_last and "images" in out:
            out["images"] = out["images"].contiguous(memory_format=torch.channels_last)
        return out

    def run_step(self, batch: Dict[str, Any]) -> Dict[str, float]:
        """One optimisation step on a batch dict; returns the loss parts as floats."""
        batch = self.to_device(batch)
        _, loss, parts = self.forward_and_loss(batch)
        self.backward_and_step(loss, self.joint_optimizers())
        self.scaler.update()
        return {"loss": float(loss.detach()), **{k: float(v) for k, v in parts.items()}}

    def forward_and_loss(self, batch: Dict[str, Any]) -> Tuple[Any, torch.Tensor, Dict[str, float]]:
        """``(outputs, loss, parts)`` of the training network on a batch already on the device; the
        loss runs in float32 outside autocast."""
        with autocast(self.device, self.amp_dtype):
            outputs = self.train_model(batch["images"])
        outputs = to_float(outputs)
        loss, parts = self.loss_fn(outputs, batch)
        return outputs, loss, parts

    def joint_optimizers(self) -> List[str]:
        """The optimizers stepped after every backward of the main loss (the main one first)."""
        return [name for name, spec in self.optimizers.items() if spec.joint]

    def backward_and_step(self, loss: torch.Tensor, names: List[str]) -> None:
        """Zero the gradients of the optimizers ``names``, back-propagate ``loss`` (AMP-scaled), scale
        each one's gradients by its ``grad_scale`` and step it. A step with several losses (a GAN's
        generator and discriminator) calls this once per loss, then ``self.scaler.update()`` once."""
        specs = [self.optimizers[name] for name in names]
        for spec in specs:
            spec.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        for spec in specs:
            if spec.grad_scale != 1.0:
                self.scaler.unscale_(spec.optimizer)
                for p in spec.params():
                    if p.grad is not None:
                        p.grad.mul_(spec.grad_scale)
            self.scaler.step(spec.optimizer)

    def train_epoch(self, epoch: int) -> Dict[str, float]:
        """One pass of the P×K sampler; returns the mean of each loss part over the steps that reported it."""
        from post_processing.progress import progress_bar

        self.train_model.train()
        self.sampler.set_epoch(epoch)
        if self.train_loader.generator is not None:
            seed = np.random.SeedSequence([self.cfg.SOLVER.SEED, epoch]).generate_state(1)[0]
            self.train_loader.generator.manual_seed(int(seed))
        sums: Dict[str, float] = defaultdict(float)
        counts: Dict[str, int] = defaultdict(int)  # parts a step may omit (e.g. SJDL's real-fog terms)
        steps, start = 0, time.time()
        bar = progress_bar(self.train_loader, self.progress, desc=f"epoch {epoch}/{self.cfg.SOLVER.MAX_EPOCHS}",
                           unit="it", leave=False, dynamic_ncols=True)
        try:
            for batch in bar:
                parts = self.run_step(batch)
                self.iteration += 1
                self.scheduler.step()
                steps += 1
                for k, v in parts.items():
                    sums[k] += v
                    counts[k] += 1
                if self.is_main and self.iteration % max(1, self.cfg.SOLVER.LOG_PERIOD) == 0:
                    bar.set_postfix(loss=f"{parts['loss']:.3f}", lr=f"{self.scheduler.get_lr():.2e}")
                    self.log_scalars({f"train/{k}": v for k, v in parts.items()})
                    self.log_scalars({"train/lr": self.scheduler.get_lr()})
        except ImageReadError as exc:
            raise clean_read_error(exc) from None
        finally:
            bar.close()
        means = {k: v / counts[k] for k, v in sums.items()}
        if self.is_main:
            secs = time.time() - start
            logger.info("epoch %d/%d  %s  lr %.2e  %.1fs (%.1f img/s)", epoch, self.cfg.SOLVER.MAX_EPOCHS,
                        "  ".join(f"{k} {v:.4f}" for k, v in means.items()), self.scheduler.get_lr(), secs,
                        steps * self.cfg.SOLVER.IMS_PER_BATCH * self.world_size / max(secs, 1e-9))
        return means

    def train(self) -> Dict[str, float]:
        """Train from the epoch after the last finished one; returns the last epoch's metrics."""
        cfg = self.cfg
        for epoch in range(self.epoch + 1, cfg.SOLVER.MAX_EPOCHS + 1):
            self.last_metrics = dict(self.train_epoch(epoch))
            self.epoch = epoch
            self.after_epoch(epoch)
        if self.is_main:
            path = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
            save_checkpoint(path, self.weights_state())
            logger.info("saved %s", path)
            if self._writer is not None:
                self._writer.close()
        return self.last_metrics

    def after_epoch(self, epoch: int) -> None:
        """Validate every ``EVAL_PERIOD`` epochs (and at the end), then write ``best.pth`` / ``last.pth``."""
        s = self.cfg.SOLVER
        last = epoch == s.MAX_EPOCHS
        metrics = None
        if s.EVAL_PERIOD > 0 and (epoch % s.EVAL_PERIOD == 0 or last):
            if self.is_main:
                metrics = self.validate()
            if self.world_size > 1:
                dist.barrier()
        if not self.is_main:
            return
        if metrics:
            self.last_metrics.update(metrics)
            self.log_scalars({f"val/{k}": v for k, v in metrics.items()})
            logger.info("validation epoch %d: %s", epoch, "  ".join(f"{k} {100 * v:.2f}" for k, v in metrics.items()))
            if metrics["mAP"] > self.best_map:
                self.best_map, self.best_epoch = metrics["mAP"], epoch
                save_checkpoint(os.path.join(self.cfg.OUTPUT_DIR, "best.pth"), self.state_dict())
        if (s.CHECKPOINT_PERIOD > 0 and epoch % s.CHECKPOINT_PERIOD == 0) or last:
            save_checkpoint(os.path.join(self.cfg.OUTPUT_DIR, "last.pth"), self.state_dict())

    # ------------------------------------------------------------------ validation
    def validation_split(self) -> Optional[Tuple[list, list]]:
        """Query/gallery of ``DATASETS.TEST`` with ground truth, or None (logged) when it has none."""
        if self._val_split is None:
            from ..data.dataset import build_test_set
            from ..data.datasets import split_table

            self._val_set, split, _ = build_test_set(self.cfg)
            logger.info("%s", split_table(self._val_set))
            query, gallery = split["query"], split["gallery"]
            if all(r.pid < 0 for r in query) or all(r.pid < 0 for r in gallery):
                logger.warning("DATASETS.TEST %r has no query/gallery ground truth; validation skipped",
                               self.cfg.DATASETS.TEST)
                self._val_split = ([], [])
            else:
                self._val_split = (query, gallery)
        return self._val_split if self._val_split[0] else None

    def validate(self) -> Optional[Dict[str, float]]:
        """mAP / mINP / CMC of the current model on the validation split (same path as ``extract``),
        under the evaluation protocol ``DATASETS.TEST`` declares (its primary mAP picks ``best.pth``)."""
        from ..data.datasets.scoring import evaluate_features

        split = self.validation_split()
        if split is None:
            return None
        query, gallery = split
        _, qf = extract_features(self.model, query, self.cfg, self.device, progress=self.progress, split="query")
        _, gf = extract_features(self.model, gallery, self.cfg, self.device, progress=self.progress,
                                 split="gallery")
        res, notes = evaluate_features(self._val_set, query, gallery, qf, gf)
        if not self._val_noted:
            self._val_noted = True
            for note in notes:
                logger.info("validation: %s", note)
        cmc = res["cmc"]
        out = {"mAP": float(res["mAP"]), "mINP": float(res["mINP"]), "rank1": float(cmc[0])}
        if len(cmc) >= 5:
            out["rank5"] = float(cmc[4])
        if "full_mAP" in res:  # AIC: mAP is the challenge's mAP@100, the whole ranking's mAP goes beside it
            out["full_mAP"] = float(res["full_mAP"])
        return out

    def summary(self) -> Dict[str, Any]:
        """How the run ended, for the closing lines of ``train``: ``best_epoch`` and ``best_map`` of
        validation (None when none ran) and ``checkpoints``, the paths that exist, by role."""
        out = self.cfg.OUTPUT_DIR
        paths = {"final": os.path.join(out, "model_final.pth"), "best": os.path.join(out, "best.pth"),
                 "last": os.path.join(out, "last.pth")}
        return {"best_epoch": self.best_epoch, "best_map": self.best_map if self.best_map >= 0 else None,
                "checkpoints": {role: path for role, path in paths.items() if os.path.isfile(path)}}

    def log_scalars(self, values: Dict[str, float]) -> None:
        """TensorBoard scalars under ``OUTPUT_DIR/tb`` at the current iteration (main process only)."""
        if not self.is_main:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(os.path.join(self.cfg.OUTPUT_DIR, "tb"), purge_step=self.iteration or None)
        for k, v in values.items():
            self._writer.add_scalar(k, v, self.iteration)

    # ------------------------------------------------------------------ checkpoints
    def weights_state(self) -> Dict[str, Any]:
        """What ``extract`` (and a family's own tools) need: weights, the auxiliary modules' weights
        under ``aux``, the full config and the number of training classes."""
        state = {"model": self.model.state_dict(), "cfg": self.cfg.dump(), "num_classes": self.num_classes,
                 "meta_arch": self.cfg.MODEL.META_ARCH, "epoch": self.epoch}
        if self.aux:
            state["aux"] = {name: module.state_dict() for name, module in self.aux.items()}
        return state

    def state_dict(self) -> Dict[str, Any]:
        """Everything a resume needs to continue exactly where this run is."""
        return {**self.weights_state(), "loss": self.loss_fn.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "optimizers": {name: spec.optimizer.state_dict() for name, spec in self.optimizers.items()
                               if name != "main"},
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "iteration": self.iteration, "best_map": self.best_map, "best_epoch": self.best_epoch or 0,
                "sampler": self.sampler.state_dict(),
                "rng": capture_rng_state()}

    def load_weights(self, ckpt: Dict[str, Any], source: str) -> None:
        """Copy the weights of a checkpoint (what ``weights_state`` wrote) into the model and aux modules."""
        load_model_weights(self.model, ckpt["model"], source=source)
        stored = ckpt.get("aux") or {}
        for name, module in self.aux.items():
            if name not in stored:
                raise CheckpointError(f"{source}: no 'aux/{name}' entry; it was not written by the "
                                      f"{self.cfg.MODEL.META_ARCH!r} trainer")
            load_model_weights(module, stored[name], source=f"{source} (aux/{name})")

    def resume(self, path: str) -> None:
        """Restore a ``state_dict`` checkpoint; ``"auto"`` = ``OUTPUT_DIR/last.pth`` if it exists."""
        if path == "auto":
            path = os.path.join(self.cfg.OUTPUT_DIR, "last.pth")
            if not os.path.isfile(path):
                logger.info("--resume auto: no %s yet, starting from scratch", path)
                return
        ckpt = load_checkpoint(path)
        missing = [k for k in ("optimizer", "optimizers", "scheduler", "iteration", "rng", "loss") if k not in ckpt]
        if missing:
            raise CheckpointError(f"{path}: cannot resume from it, it lacks {', '.join(missing)} "
                                  "(use last.pth or best.pth, not model_final.pth)")
        if ckpt.get("num_classes") != self.num_classes:
            raise CheckpointError(f"{path}: trained on {ckpt.get('num_classes')} ids but DATASETS.TRAIN now has "
                                  f"{self.num_classes}; resume needs the same training data")
        extra = [name for name in self.optimizers if name != "main"]
        absent = [name for name in extra if name not in ckpt["optimizers"]]
        if absent:
            raise CheckpointError(f"{path}: cannot resume from it, it has no state for the optimizer(s) "
                                  f"{', '.join(absent)} (was it trained with other losses or modules?)")
        self.load_weights(ckpt, path)
        self.loss_fn.load_state_dict(ckpt["loss"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        for name in extra:
            self.optimizers[name].optimizer.load_state_dict(ckpt["optimizers"][name])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler.is_enabled() and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.sampler.load_state_dict(ckpt["sampler"])
        self.epoch, self.iteration = int(ckpt["epoch"]), int(ckpt["iteration"])
        self.best_map = float(ckpt["best_map"])
        self.best_epoch = int(ckpt.get("best_epoch", 0)) or None
        restore_rng_state(ckpt["rng"])
        if self.is_main:
            logger.info("resumed from %s at epoch %d (iteration %d)", path, self.epoch, self.iteration)
