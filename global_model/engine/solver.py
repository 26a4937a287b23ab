"""Optimizer parameter groups and the per-iteration learning-rate schedule.

Groups carry an ``lr_factor`` (bias, backbone) and their own weight decay (bias, norm layers); the
scheduler sets ``lr = schedule(iteration) * lr_factor`` on every group each iteration, so warm-up
is iteration-based and resuming only needs the iteration counter. Parameters that need another
optimizer (class centres, a GAN discriminator) are declared with :class:`OptimizerSpec`.
"""
from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from typing import AbstractSet, Dict, Iterable, List, Sequence, Tuple, Union

import torch
from torch import nn

from ..config import ConfigError

__all__ = ["OptimizerSpec", "WarmupScheduler", "build_optimizer", "param_groups"]

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


@dataclass
class OptimizerSpec:
    """An optimizer beside the trainer's main (scheduled) one, over parameters the main one leaves out.

    ``grad_scale`` multiplies the gradients (after AMP unscaling) before each step, e.g. the class
    centres' ``1 / LOSS.CENTER_WEIGHT``. ``joint``: stepped by the base trainer after every backward
    of the main loss; ``False``: the family's ``run_step`` steps it itself (a GAN discriminator
    with its own loss, through ``Trainer.backward_and_step``).
    """

    optimizer: torch.optim.Optimizer
    grad_scale: float = 1.0
    joint: bool = True

    def params(self) -> List[torch.nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]


def param_groups(model: nn.Module, cfg, backbone_prefixes: Iterable[str] = ("backbone.",),
                 skip: AbstractSet[int] = frozenset()) -> List[Dict]:
    """Trainable parameters (except those whose ``id`` is in ``skip``) grouped by (lr factor, weight decay).

    Biases get ``SOLVER.BIAS_LR_FACTOR`` and ``SOLVER.WEIGHT_DECAY_BIAS``; weights of norm layers
    get ``SOLVER.WEIGHT_DECAY_NORM``; parameters whose name starts with a backbone prefix get
    ``SOLVER.BACKBONE_LR_FACTOR`` on top.
    """
    s = cfg.SOLVER
    norm_params = {id(p) for m in model.modules() if isinstance(m, _NORM_TYPES) for p in m.parameters(recurse=False)}
    prefixes = tuple(backbone_prefixes)
    groups: Dict[Tuple[float, float], List[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in skip:
            continue
        factor, wd = 1.0, s.WEIGHT_DECAY
        if name.endswith("bias"):
            factor, wd = s.BIAS_LR_FACTOR, s.WEIGHT_DECAY_BIAS
        elif id(p) in norm_params:
            wd = s.WEIGHT_DECAY_NORM
        if prefixes and name.startswith(prefixes):
            factor *= s.BACKBONE_LR_FACTOR
        groups.setdefault((float(factor), float(wd)), []).append(p)
    return [{"params": ps, "lr_factor": f, "weight_decay": wd, "lr": s.BASE_LR * f}
            for (f, wd), ps in groups.items()]


def build_optimizer(groups: List[Dict], cfg) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov), Adam, AdamW or AMSGrad (Adam with ``amsgrad=True``) over ``groups``,
    per ``SOLVER.OPTIMIZER``."""
    s = cfg.SOLVER
    name = s.OPTIMIZER.lower()
    if name == "sgd":
        return torch.optim.SGD(groups, lr=s.BASE_LR, momentum=s.MOMENTUM, nesterov=s.NESTEROV and s.MOMENTUM > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=s.BASE_LR)
    if name == "amsgrad":
        return torch.optim.Adam(groups, lr=s.BASE_LR, amsgrad=True)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=s.BASE_LR)
    raise ConfigError(f"SOLVER.OPTIMIZER {s.OPTIMIZER!r} is not one of SGD, Adam, AdamW, AMSGrad")


class WarmupScheduler:
    """Linear warm-up from ``WARMUP_FACTOR`` over ``WARMUP_EPOCHS`` worth of iterations, then
    multistep (×``GAMMA`` after each epoch in ``STEPS``) or cosine decay to ``ETA_MIN_LR``.

    ``epoch_iters`` is the number of iterations of every epoch (``SOLVER.MAX_EPOCHS`` counts, or
    one count for all): the schedule ends exactly at the last iteration even when epochs differ."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg, epoch_iters: Union[int, Sequence[int]]):
        s = cfg.SOLVER
        if s.SCHED not in ("multistep", "cosine"):
            raise ConfigError(f"SOLVER.SCHED {s.SCHED!r} is not one of multistep, cosine")
        self.optimizer = optimizer
        self.base_lr, self.sched, self.gamma = s.BASE_LR, s.SCHED, s.GAMMA
        self.steps = sorted(s.STEPS)
        self.eta_min = s.ETA_MIN_LR
        counts = [epoch_iters] * s.MAX_EPOCHS if isinstance(epoch_iters, int) else list(epoch_iters)
        counts = [max(1, int(c)) for c in counts] or [1]
        self.epoch_ends = list(itertools.accumulate(counts))  # iteration at which each epoch ends
        self.total = self.epoch_ends[-1]
        self.warmup_iters = int(round(s.WARMUP_EPOCHS * (self.total / len(counts))))
        self.warmup_factor = s.WARMUP_FACTOR
        self.iteration = 0
        self._apply()

    def lr_at(self, it: int) -> float:
        if self.sched == "multistep":
            done_epochs = bisect.bisect_right(self.epoch_ends, it)
            lr = self.base_lr * self.gamma ** sum(done_epochs >= m for m in self.steps)
        else:
            span = max(1, self.total - self.warmup_iters)
            t = min(1.0, max(0, it - self.warmup_iters) / span)
            lr = self.eta_min + (self.base_lr - self.eta_min) * 0.5 * (1 + math.cos(math.pi * t))
        if it < self.warmup_iters:
            alpha = it / self.warmup_iters
            lr *= self.warmup_factor * (1 - alpha) + alpha
        return lr

    def _apply(self) -> None:
        lr = self.lr_at(self.iteration)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_factor", 1.0)

    def step(self) -> None:
        """Advance one iteration (call after ``optimizer.step()``)."""
        self.iteration += 1
        self._apply()

    def get_lr(self) -> float:
        return self.lr_at(self.iteration)

    def state_dict(self) -> Dict:
        return {"iteration": self.iteration}

    def load_state_dict(self, state: Dict) -> None:
        self.iteration = int(state["iteration"])
        self._apply()
