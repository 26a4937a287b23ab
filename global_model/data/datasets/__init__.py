"""Registry of dataset loaders: ``load_dataset(name, root, **kwargs) -> DatasetSplits``.

Loaders read the real formats exactly as shipped and never import torch, so the ensemble CLI can
use them to read name lists, tracks and ground truth.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List

from ..records import ImageRecord
from post_processing.errors import ReidError

_LOADERS: Dict[str, Callable[..., "DatasetSplits"]] = {}
# Modules that register loaders when imported.
_MODULES = ("aic20", "veri776", "vehicleid", "veriwild", "fvrid", "market1501")


class DatasetError(ReidError, ValueError):
    """A dataset root that does not match its format: names the loader and what is missing/bad."""


@dataclass
class DatasetSplits:
    """Train / query / gallery records of one dataset, in the order the format lists them."""

    name: str
    root: str
    train: List[ImageRecord] = field(default_factory=list)
    query: List[ImageRecord] = field(default_factory=list)
    gallery: List[ImageRecord] = field(default_factory=list)
    extra: Dict[str, object] = field(default_factory=dict)

    def summary(self) -> str:
        def ids(recs):
            return len({r.pid for r in recs if r.pid >= 0})

        def cams(recs):
            return len({r.camid for r in recs if r.camid >= 0})

        lines = [f"dataset {self.name} at {self.root}"]
        for split in ("train", "query", "gallery"):
            recs = getattr(self, split)
            lines.append(f"  {split:8s} {len(recs):7d} images {ids(recs):6d} ids {cams(recs):4d} cameras")
        return "\n".join(lines)


def register(name: str):
    """Decorator registering a loader function ``fn(root, **kwargs) -> DatasetSplits``."""

    def deco(fn):
        _LOADERS[name] = fn
        return fn

    return deco


def _import_all():
    for mod in _MODULES:
        importlib.import_module(f"{__name__}.{mod}")


def available() -> List[str]:
    _import_all()
    return sorted(_LOADERS)


def load_dataset(name: str, root: str, **kwargs) -> DatasetSplits:
    """Load dataset ``name`` from ``root``; unknown names raise listing the known ones."""
    _import_all()
    if name not in _LOADERS:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_LOADERS))}")
    return _LOADERS[name](root, **kwargs)
