"""Model construction: an architecture registry keyed by ``MODEL.META_ARCH``.

Every architecture follows one output contract so that the trainer, losses and extractor are shared:

- ``train()`` mode: ``model(images)`` returns ``{"logits": [B×num_classes, ...],
  "triplet_feats": [B×D, ...], "center_feats": [B×model.feat_dim, ...] (optional)}``;
- ``eval()`` mode: the test feature B×``model.feat_dim``, not normalised (the extractor flips,
  averages and L2-normalises).

Architectures register with ``@register_arch(name)`` on a callable ``(cfg, num_classes) -> nn.Module``.
An unknown name is looked for in ``global_model.modeling.<name>`` and then in the package
``<name>_model`` (``mgn_model`` registers ``"mgn"`` on import).
"""
from __future__ import annotations

import importlib
from typing import Callable, Dict

from torch import nn

ARCHS: Dict[str, Callable[..., nn.Module]] = {}


def register_arch(name: str):
    """Decorator adding an architecture builder ``(cfg, num_classes) -> nn.Module`` under ``name``."""

    def decorator(builder):
        if name in ARCHS and ARCHS[name] is not builder:
            raise ValueError(f"architecture {name!r} is registered twice ({ARCHS[name]!r} and {builder!r})")
        ARCHS[name] = builder
        return builder

    return decorator


def _import_arch(name: str) -> None:
    for module in (f"{__name__}.{name}", f"{name}_model"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the module exists but one of its own imports is missing
                raise
        if name in ARCHS:
            return


def build_model(cfg, num_classes: int) -> nn.Module:
    """The ``cfg.MODEL.META_ARCH`` architecture with ``num_classes`` identity classifiers."""
    name = cfg.MODEL.META_ARCH
    if name not in ARCHS:
        _import_arch(name)
    if name not in ARCHS:
        raise ValueError(f"MODEL.META_ARCH {name!r} is not a known architecture; known: {', '.join(sorted(ARCHS))} "
                         f"(a package '{name}_model' registering it with register_arch would also do)")
    return ARCHS[name](cfg, num_classes)


from . import baseline  # noqa: E402,F401  (registers "baseline")
from .losses import build_loss  # noqa: E402,F401  (re-exported: the trainer builds model and loss from here)
