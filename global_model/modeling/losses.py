"""Re-identification losses over the model output contract (see ``global_model.modeling``).

``build_loss(cfg, num_classes, feat_dim)`` returns a module whose ``forward(outputs, batch)`` gives
``(total, parts)``: ``total`` = Σ weight·term over the registered terms whose weight is > 0;
``parts`` maps each term name to its *unweighted* value (a float, for logs). Each term is **summed**
over the tensors of its list (one per classifier / global vector), as MGN does; a single-vector
model has one tensor per list, so sum and mean agree there.

A term is one class registered in ``LOSS_TERMS`` (``@register_loss_term(name)``, a
:class:`LossTerm`) that names its weight key, the model output it reads and its place in the sum:

- ``ce`` (``LOSS.CE_WEIGHT``): label-smoothed cross-entropy on every tensor in ``outputs["logits"]``;
- ``triplet`` (``LOSS.TRIPLET_WEIGHT``): batch-hard triplet on every tensor in
  ``outputs["triplet_feats"]`` (euclidean; ``LOSS.TRIPLET_MARGIN`` 0 selects the soft margin);
- ``center`` (``LOSS.CENTER_WEIGHT``): squared distance to learnable class centres for
  ``outputs["center_feats"]`` (width ``feat_dim``); the centres step with their own SGD;
- ``circle`` (``LOSS.CIRCLE_WEIGHT``): pairwise circle loss (Sun et al., CVPR 2020) on ``triplet_feats``.

All terms run in float32 with autocast disabled, so they are exact under bf16/fp16 training.
"""
from __future__ import annotations

from typing import ClassVar, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from post_processing.errors import ReidUsageError
from post_processing.registry import Registry, import_submodules

from ..engine.solver import OptimizerSpec

__all__ = ["CLASS_SCORE_KEYS", "CenterLoss", "CircleLoss", "CrossEntropyLoss", "LOSS_TERMS", "LossConfigError",
           "LossTerm", "ReIDLoss", "TripletLoss", "build_loss", "loss_optimizers", "pair_masks", "register_loss_term"]

# Model outputs scored per class (B×num_classes); every other output list is per row only.
CLASS_SCORE_KEYS = ("logits",)


class LossConfigError(ReidUsageError, ValueError):
    """A loss weight or option of the config that no loss can be built from."""


class LossTerm(nn.Module):
    """One term of :class:`ReIDLoss`: ``forward(tensor, pids)`` on one tensor of ``outputs[output_key]``.

    ``weight_key`` is the config key of its weight (dotted, e.g. ``"LOSS.CE_WEIGHT"``); the term is
    built (``from_config``) and summed only when that weight is > 0, and is off when the config
    lacks the key. Terms are added in ``order`` (then name): float addition order is part of the result.
    """

    weight_key: ClassVar[str]
    output_key: ClassVar[str]
    order: ClassVar[int] = 1000

    @classmethod
    def from_config(cls, cfg, num_classes: int, feat_dim: int) -> "LossTerm":
        raise NotImplementedError

    def extra_optimizers(self, cfg) -> Dict[str, OptimizerSpec]:
        """Optimizers this term's own parameters need instead of the main one (none by default)."""
        return {}


def _discover_terms(name) -> None:
    """A loss term is one module of ``global_model.modeling`` (or a family package / plugin module)."""
    import_submodules("global_model.modeling")


# Filled on import by the modules of global_model.modeling, family packages and plugin modules.
LOSS_TERMS: Registry = Registry("loss term", discover=_discover_terms)


def register_loss_term(name: str):
    """Class decorator adding a :class:`LossTerm` subclass to ``LOSS_TERMS`` under ``name``."""
    def deco(cls):
        if not (isinstance(cls, type) and issubclass(cls, LossTerm)):
            raise TypeError(f"loss term {name!r}: {cls!r} is not a LossTerm subclass")
        return LOSS_TERMS.register(name, cls)

    return deco


def config_value(cfg, key: str, default=None):
    """``cfg`` at the dotted ``key`` (e.g. ``"LOSS.CE_WEIGHT"``), or ``default`` when a node lacks it."""
    node = cfg
    for part in key.split("."):
        if part not in node:
            return default
        node = node[part]
    return node


def pairwise_euclidean(x: torch.Tensor) -> torch.Tensor:
    """N×N euclidean distances between the rows of ``x`` (clamped away from 0 for a finite gradient)."""
    sq = (x * x).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.t())
    return d2.clamp(min=1e-12).sqrt()


def pair_masks(pids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) N×N masks; an image is not its own positive."""
    same = pids[:, None] == pids[None, :]
    eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    return same & ~eye, ~same


def hard_example_mining(dist: torch.Tensor, pids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per anchor, the farthest positive and nearest negative distance, and which anchors have both."""
    pos, neg = pair_masks(pids)
    valid = pos.any(1) & neg.any(1)
    d_ap = dist.masked_fill(~pos, float("-inf")).max(1).values
    d_an = dist.masked_fill(~neg, float("inf")).min(1).values
    return d_ap, d_an, valid


@register_loss_term("ce")
class CrossEntropyLoss(LossTerm):
    """Label-smoothed cross-entropy over ``num_classes`` classes."""

    weight_key, output_key, order = "LOSS.CE_WEIGHT", "logits", 100

    def __init__(self, num_classes: int, label_smooth: float = 0.1):
        super().__init__()
        if not 0 <= label_smooth < 1:
            raise LossConfigError(f"LOSS.LABEL_SMOOTH must lie in [0, 1), got {label_smooth}")
        self.num_classes, self.label_smooth = num_classes, label_smooth

    @classmethod
    def from_config(cls, cfg, num_classes: int, feat_dim: int) -> "CrossEntropyLoss":
        return cls(num_classes, cfg.LOSS.LABEL_SMOOTH)

    def forward(self, logits: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        if logits.shape != (len(pids), self.num_classes):
            raise ValueError(f"logits of shape {tuple(logits.shape)} do not match {len(pids)} labels × "
                             f"{self.num_classes} classes")
        return F.cross_entropy(logits, pids, label_smoothing=self.label_smooth)


@register_loss_term("triplet")
class TripletLoss(LossTerm):
    """Batch-hard triplet loss; anchors without a positive or a negative in the batch are skipped."""

    weight_key, output_key, order = "LOSS.TRIPLET_WEIGHT", "triplet_feats", 200

    def __init__(self, margin: float = 0.3):
        super().__init__()
        if margin < 0:
            raise LossConfigError(f"LOSS.TRIPLET_MARGIN must be >= 0 (0 = soft margin), got {margin}")
        self.margin = margin

    @classmethod
    def from_config(cls, cfg, num_classes: int, feat_dim: int) -> "TripletLoss":
        return cls(cfg.LOSS.TRIPLET_MARGIN)

    def forward(self, feats: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        d_ap, d_an, valid = hard_example_mining(pairwise_euclidean(feats), pids)
        if not bool(valid.any()):
            return feats.sum() * 0.0
        diff = d_ap[valid] - d_an[valid]
        return F.softplus(diff).mean() if self.margin == 0 else F.relu(diff + self.margin).mean()


@register_loss_term("center")
class CenterLoss(LossTerm):
    """Mean squared distance of each feature to its class centre (Wen et al., ECCV 2016).

    The centres step with their own SGD at ``LOSS.CENTER_LR`` and, as in reid-strong-baseline,
    their gradient is scaled by ``1 / LOSS.CENTER_WEIGHT`` first, so the centre update does not
    depend on the loss weight.
    """

    weight_key, output_key, order = "LOSS.CENTER_WEIGHT", "center_feats", 300

    def __init__(self, num_classes: int, feat_dim: int):
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    @classmethod
    def from_config(cls, cfg, num_classes: int, feat_dim: int) -> "CenterLoss":
        return cls(num_classes, feat_dim)

    def extra_optimizers(self, cfg) -> Dict[str, OptimizerSpec]:
        return {"centers": OptimizerSpec(torch.optim.SGD([self.centers], lr=cfg.LOSS.CENTER_LR),
                                         grad_scale=1.0 / cfg.LOSS.CENTER_WEIGHT)}

    def forward(self, feats: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        if feats.shape[1] != self.centers.shape[1]:
            raise ValueError(f"center loss was built for {self.centers.shape[1]}-d features (feat_dim) but the model's "
                             f"center_feats are {feats.shape[1]}-d")
        return (feats - self.centers[pids]).pow(2).sum(1).clamp(1e-12, 1e12).mean()


@register_loss_term("circle")
class CircleLoss(LossTerm):
    """Pairwise circle loss on cosine similarities with self-paced weights ``alpha`` (held constant)."""

    weight_key, output_key, order = "LOSS.CIRCLE_WEIGHT", "triplet_feats", 400

    def __init__(self, margin: float = 0.25, gamma: float = 128.0):
        super().__init__()
        self.margin, self.gamma = margin, gamma

    @classmethod
    def from_config(cls, cfg, num_classes: int, feat_dim: int) -> "CircleLoss":
        return cls(cfg.LOSS.CIRCLE_MARGIN, cfg.LOSS.CIRCLE_GAMMA)

    def forward(self, feats: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        pos, neg = pair_masks(pids)
        valid = pos.any(1) & neg.any(1)
        if not bool(valid.any()):
            return feats.sum() * 0.0
        x = F.normalize(feats, dim=1)
        sim = (x[valid] @ x.t())
        pos, neg = pos[valid], neg[valid]
        m, gamma = self.margin, self.gamma
        alpha_p = (1.0 + m - sim).clamp(min=0).detach()
        alpha_n = (sim + m).clamp(min=0).detach()
        logit_p = (-gamma * alpha_p * (sim - (1.0 - m))).masked_fill(~pos, float("-inf"))
        logit_n = (gamma * alpha_n * (sim - m)).masked_fill(~neg, float("-inf"))
        return F.softplus(logit_p.logsumexp(1) + logit_n.logsumexp(1)).mean()


class ReIDLoss(nn.Module):
    """Weighted sum of the registered terms whose weight is > 0; see the module docstring."""

    def __init__(self, cfg, num_classes: int, feat_dim: int):
        super().__init__()
        classes = sorted(LOSS_TERMS.items(), key=lambda item: (item[1].order, item[0]))
        weights = {name: config_value(cfg, cls.weight_key, 0.0) for name, cls in classes}
        for name, cls in classes:
            if weights[name] < 0:
                raise LossConfigError(f"{cls.weight_key} must be >= 0, got {weights[name]}")
        if not any(weights.values()):
            raise LossConfigError(f"every loss weight ({', '.join(cls.weight_key for _, cls in classes)}) is 0: at "
                                  f"least one loss term is needed")
        self.weights = {name: float(w) for name, w in weights.items() if w > 0}
        self.num_classes = num_classes
        self.terms = nn.ModuleDict({name: cls.from_config(cfg, num_classes, feat_dim)
                                    for name, cls in classes if name in self.weights})

    def _tensors(self, outputs: dict, term: LossTerm) -> List[torch.Tensor]:
        key = term.output_key
        value = outputs.get(key)
        if not value:
            raise ValueError(f"{term.weight_key} > 0 needs the model output '{key}' (a non-empty list of "
                             f"tensors), got keys {sorted(outputs)}")
        return [value] if isinstance(value, torch.Tensor) else list(value)

    def _check_pids(self, batch: dict) -> torch.Tensor:
        pids = batch.get("pids") if isinstance(batch, dict) else None
        if not isinstance(pids, torch.Tensor) or pids.dim() != 1 or pids.dtype not in (torch.int64, torch.int32):
            raise ValueError("batch['pids'] must be a 1-D integer tensor of training labels")
        if bool(((pids < 0) | (pids >= self.num_classes)).any()):
            raise ValueError(f"batch['pids'] must lie in 0..{self.num_classes - 1} (num_classes={self.num_classes}); "
                             f"got values {int(pids.min())}..{int(pids.max())}")
        return pids.long()

    def forward(self, outputs: dict, batch: dict) -> Tuple[torch.Tensor, Dict[str, float]]:
        pids = self._check_pids(batch)
        terms: Dict[str, torch.Tensor] = {}
        with torch.autocast(device_type=pids.device.type, enabled=False):
            for name, term in self.terms.items():
                terms[name] = sum(term(t.float(), pids) for t in self._tensors(outputs, term))
            total = sum(self.weights[name] * value for name, value in terms.items())
        return total, {name: float(value.detach()) for name, value in terms.items()}


def build_loss(cfg, num_classes: int, feat_dim: int) -> ReIDLoss:
    """The loss of ``cfg`` for ``num_classes`` identities; ``feat_dim`` is the centre width (model.feat_dim)."""
    return ReIDLoss(cfg, num_classes, feat_dim)


def loss_optimizers(loss: nn.Module, cfg) -> Dict[str, OptimizerSpec]:
    """The extra optimizers every :class:`LossTerm` inside ``loss`` declares, named ``<module path>.<name>``
    (e.g. ``terms.center.centers``), in module order."""
    found: Dict[str, OptimizerSpec] = {}
    for path, module in loss.named_modules():
        if isinstance(module, LossTerm):
            for name, spec in module.extra_optimizers(cfg).items():
                found[f"{path}.{name}" if path else name] = spec
    return found
