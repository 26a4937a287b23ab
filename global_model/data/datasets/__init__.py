"""Registry of dataset loaders, ``load_dataset(name, root, **kwargs) -> DatasetSplits``, and the one
way of merging training sets (:func:`merge_train_sets`).

A loader is a function ``fn(root, **kwargs) -> DatasetSplits`` registered with ``@register("name")``
in any module of this package (every module is imported when a name is looked up, so a new
loader is one new file) or in a third-party module named in the ``reid_ensemble.plugins``
entry-point group. Loaders read the real formats exactly as shipped and never import torch, so
the ensemble CLI can use them to read name lists, tracks and ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from post_processing.errors import ReidError
from post_processing.registry import Registry, import_submodules

from ..records import ImageRecord

__all__ = ["DATASETS", "DatasetError", "DatasetSplits", "load_dataset", "merge_train_sets", "register"]


class DatasetError(ReidError, ValueError):
    """A dataset root that does not match its format: names the loader and what is missing/bad."""


@dataclass
class DatasetSplits:
    """Train / query / gallery records of one dataset, in the order the format lists them.

    ``extra`` holds what a format has beyond records and the ensemble reads (AIC20: ``tracks``,
    ``has_ground_truth``).
    """

    name: str
    root: str
    train: List[ImageRecord] = field(default_factory=list)
    query: List[ImageRecord] = field(default_factory=list)
    gallery: List[ImageRecord] = field(default_factory=list)
    extra: Dict[str, object] = field(default_factory=dict)


def _discover(_name: Optional[str]) -> None:
    import_submodules(__name__)


# name -> fn(root, **kwargs) -> DatasetSplits
DATASETS: Registry = Registry("dataset", discover=_discover)


def register(name: str) -> Callable:
    """Decorator registering a loader function ``fn(root, **kwargs) -> DatasetSplits`` as ``name``."""
    return DATASETS.register(name)


def load_dataset(name: str, root: str, **kwargs) -> DatasetSplits:
    """Load dataset ``name`` from ``root``; an unknown name raises with the closest known names.

    ``val_ids`` (N or a fraction) and ``val_seed``, for every loader, hold training identities out as a
    validation split (:mod:`.validation`); not when the caller asked the loader for no training split
    (``train=False``)."""
    val = {k: kwargs.pop(k) for k in ("val_ids", "val_seed") if k in kwargs}
    splits = DATASETS.get(name)(root, **kwargs)
    if val.get("val_ids") is None or kwargs.get("train") is False:
        return splits
    from .validation import carve_validation

    return carve_validation(splits, val["val_ids"], val.get("val_seed", 0))


def merge_train_sets(sets: Sequence[Sequence[ImageRecord]], *,
                     relabel_cameras: bool = False) -> Tuple[List[ImageRecord], int]:
    """Concatenate training sets with disjoint ids: returns ``(records, number of classes)``.

    Set 0's pids become 0..n0-1 in sorted pid order, set 1's n0..n0+n1-1, and so on; records keep
    their order. ``relabel_cameras`` relabels camera ids the same way (per set, sorted; -1 stays -1),
    so two sets never share a camera id. Every record needs a pid (>= 0).
    """
    merged: List[ImageRecord] = []
    pid_offset = cam_offset = 0
    for index, records in enumerate(sets):
        unlabelled = next((r for r in records if r.pid < 0), None)
        if unlabelled is not None:
            raise DatasetError(f"training set {index}: {unlabelled.path} has no identity (pid {unlabelled.pid}); "
                               f"drop unlabelled records before merging")
        pid_map = {pid: pid_offset + i for i, pid in enumerate(sorted({r.pid for r in records}))}
        cam_map: Dict[int, int] = {}
        if relabel_cameras:
            cameras = sorted({r.camid for r in records if r.camid >= 0})
            cam_map = {c: cam_offset + i for i, c in enumerate(cameras)}
            cam_offset += len(cameras)
        merged += [replace(r, pid=pid_map[r.pid], camid=cam_map.get(r.camid, -1) if relabel_cameras else r.camid)
                   for r in records]
        pid_offset += len(pid_map)
    return merged, pid_offset
