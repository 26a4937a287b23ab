"""Model construction: the architecture registry ``ARCHS``, keyed by ``MODEL.META_ARCH``.

Every architecture follows one output contract so that the trainer, losses and extractor are shared:

- ``train()`` mode: ``model(images)`` returns ``{"logits": [B×num_classes, ...],
  "triplet_feats": [B×D, ...], "center_feats": [B×model.feat_dim, ...] (optional)}``;
- ``eval()`` mode: the test feature B×``model.feat_dim``, not normalised (the extractor flips,
  averages and L2-normalises).

Architectures register with ``@register_arch(name)`` on a callable ``(cfg, num_classes) -> nn.Module``.
A name not registered yet is looked for in its family package (``global_model.<name>``, then
``<name>_model``; see :mod:`global_model.families`) and in ``reid_ensemble.plugins`` entry points.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from post_processing.registry import Registry

from ..families import discover_family

__all__ = ["ARCHS", "build_model", "register_arch"]

ARCHS: Registry[Callable[..., nn.Module]] = Registry("architecture", discover=discover_family)


def register_arch(name: str):
    """Decorator adding an architecture builder ``(cfg, num_classes) -> nn.Module`` under ``name``."""
    return ARCHS.register(name)


def build_model(cfg, num_classes: int) -> nn.Module:
    """The ``cfg.MODEL.META_ARCH`` architecture with ``num_classes`` identity classifiers."""
    return ARCHS.get(cfg.MODEL.META_ARCH)(cfg, num_classes)


from . import baseline  # noqa: E402,F401  (registers "baseline")
from . import pretrainedmodels_zoo  # noqa: E402,F401  (registers the "pretrainedmodels" backbone source)
