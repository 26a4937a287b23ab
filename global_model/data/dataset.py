"""Torch dataset over :class:`ImageRecord` lists, and the train/test record and loader builders.

Batches are dicts: ``images`` (B×3×H×W float32), ``pids`` and ``camids`` (int64), ``paths``
(list of str) and, when records carry a paired fog-free image, ``clear`` (B×3×H×W, augmented
exactly like ``images``) with ``has_clear`` (bool, False where a record had none and ``clear``
repeats the input).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .datasets import (DatasetError, DatasetSplits, load_dataset_entry, merge_train_sets, parse_dataset_spec,
                       split_table)
from .image_io import check_images, read_image
from .records import ImageRecord
from .sampler import PKSampler
from .transforms import build_transforms

__all__ = ["ReIDDataset", "build_test_loader", "build_test_records", "build_test_set", "build_test_split",
           "build_train_loader", "build_train_records", "collate", "load_dataset_spec", "parse_dataset_spec"]

logger = logging.getLogger("global_model.data")


class ReIDDataset(Dataset):
    """Reads and transforms one record per item; items are indices or ``(index, sample_seed)``."""

    def __init__(self, records: Sequence[ImageRecord], transform):
        self.records = list(records)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item) -> Dict[str, Any]:
        idx, seed = item if isinstance(item, tuple) else (item, 0)
        rec = self.records[idx]
        out = {"images": torch.from_numpy(self.transform(read_image(rec.path), np.random.default_rng(seed))),
               "pids": rec.pid, "camids": rec.camid, "paths": rec.path}
        if rec.clear_path:
            # Same seed → same crop/flip/erasing, so the pair stays pixel-aligned.
            clear = self.transform(read_image(rec.clear_path), np.random.default_rng(seed))
            out["clear"] = torch.from_numpy(clear)
        return out


def collate(samples: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Stack a list of dataset items into one batch dict (see the module docstring)."""
    batch = {"images": torch.stack([s["images"] for s in samples]),
             "pids": torch.tensor([s["pids"] for s in samples], dtype=torch.int64),
             "camids": torch.tensor([s["camids"] for s in samples], dtype=torch.int64),
             "paths": [s["paths"] for s in samples]}
    if any("clear" in s for s in samples):
        batch["clear"] = torch.stack([s.get("clear", s["images"]) for s in samples])
        batch["has_clear"] = torch.tensor(["clear" in s for s in samples])
    return batch


def _single_threaded_opencv(workers: int) -> None:
    """With loader workers, OpenCV runs one thread per process: the workers already run in parallel
    (its own pool would oversubscribe). Set in the parent, before the workers are forked: a forked
    child that resizes an inherited, running thread pool can hang (its condition variables were
    copied mid-wait), so the children only inherit the setting."""
    if workers > 0:
        cv2.setNumThreads(1)


def load_dataset_spec(spec: str, cfg, root_override: Optional[str] = None, train: bool = True) -> DatasetSplits:
    """Load one ``DATASETS`` entry with ``DATASETS.ROOT`` as the default folder (see
    :func:`~global_model.data.datasets.load_dataset_entry`; ``train=False`` skips the training split).
    ``DATASETS.VAL_IDS``/``VAL_SEED`` become the entry's ``val_ids``/``val_seed`` unless it names its own."""
    held = {"val_ids": cfg.DATASETS.VAL_IDS, "val_seed": cfg.DATASETS.VAL_SEED} if cfg.DATASETS.VAL_IDS else {}
    return load_dataset_entry(spec, cfg.DATASETS.ROOT, root_override, train=train, **held)


def clear_twin_records(spec: str, cfg, key: str) -> List[ImageRecord]:
    """Query + gallery records of the dataset entry ``spec`` (config key ``key``, named in the error)
    that have a clear twin: the restoration validation pairs of the defogging families."""
    splits = load_dataset_spec(spec, cfg)
    records = [r for r in splits.query + splits.gallery if r.clear_path]
    if not records:
        raise DatasetError(f"{key} {spec!r}: no query/gallery image has a clear twin")
    return records


def evenly_spaced(records: List[ImageRecord], limit: int) -> List[ImageRecord]:
    """At most ``max(1, limit)`` of ``records``, evenly spaced over the list (all of them when fewer)."""
    limit = max(1, limit)
    if len(records) <= limit:
        return records
    return [records[i] for i in np.linspace(0, len(records) - 1, limit).round().astype(int)]


def _skip_bad(records: List[ImageRecord], what: str) -> List[ImageRecord]:
    good, bad = check_images(records, skip_bad=True)
    if bad:
        shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        print(f"DATASETS.SKIP_BAD: skipped {len(bad)} unreadable image(s) of {what}: {shown}")
    return good


def _left_out(records: List[ImageRecord], kept: List[ImageRecord]) -> List[str]:
    kept_ids = {id(r) for r in kept}
    return [r.name for r in records if id(r) not in kept_ids]


def build_train_records(cfg) -> Tuple[List[ImageRecord], int]:
    """Merge the ``DATASETS.TRAIN`` sets (:func:`merge_train_sets`: pids relabelled 0..C-1, disjoint
    across sets, camids kept distinct per set); records with unknown pid (< 0) are dropped.
    Returns (records, num_classes)."""
    sets = []
    for spec in cfg.DATASETS.TRAIN:
        splits = load_dataset_spec(spec, cfg)
        logger.info("%s", split_table(splits))
        recs = [r for r in splits.train if r.pid >= 0]
        if not recs:
            raise DatasetError(f"dataset {spec!r} at {splits.root}: no labelled training images")
        if cfg.DATASETS.SKIP_BAD:
            recs = _skip_bad(recs, spec)
        sets.append(recs)
    if not any(sets):
        raise DatasetError("DATASETS.TRAIN is empty: name at least one training set")
    return merge_train_sets(sets, relabel_cameras=True)


def build_test_set(cfg, root: Optional[str] = None, train: bool = False, split: str = "test"
                   ) -> Tuple[DatasetSplits, Dict[str, List[ImageRecord]], Dict[str, List[str]]]:
    """``(dataset, records, skipped)`` of ``DATASETS.TEST`` (``root`` replaces its folder): the loaded
    dataset (its protocol and notes), ``{"query": ..., "gallery": ...}`` in the format's order (with
    ``train`` also ``"train"``: metric learning fits on it; else the training split is not read) and,
    per split, the names of the unreadable images ``DATASETS.SKIP_BAD`` left out (empty lists without it).
    ``split="val"``: the query/gallery of the validation split its ``val_ids`` hold out
    (:mod:`.datasets.validation`)."""
    from .datasets.validation import split_view

    loaded = load_dataset_spec(cfg.DATASETS.TEST, cfg, root, train=train or split == "val")
    splits = replace(split_view(loaded, split), train=loaded.train)
    if not splits.query or not splits.gallery:
        raise DatasetError(f"dataset {cfg.DATASETS.TEST!r} at {splits.root}: query ({len(splits.query)}) and "
                           f"gallery ({len(splits.gallery)}) must both be non-empty")
    out = {"query": splits.query, "gallery": splits.gallery}
    if train:
        if not splits.train:
            raise DatasetError(f"dataset {cfg.DATASETS.TEST!r} at {splits.root}: no training images to extract")
        out["train"] = splits.train
    skipped: Dict[str, List[str]] = {name: [] for name in out}
    if cfg.DATASETS.SKIP_BAD:
        kept = {name: _skip_bad(records, name) for name, records in out.items()}
        skipped = {name: _left_out(out[name], kept[name]) for name in out}
        out = kept
    return splits, out, skipped


def build_test_split(cfg, root: Optional[str] = None, train: bool = False,
                     split: str = "test") -> Tuple[Dict[str, List[ImageRecord]], Dict[str, List[str]]]:
    """``(records, skipped)`` of :func:`build_test_set`."""
    return build_test_set(cfg, root, train, split)[1:]


def build_test_records(cfg, root: Optional[str] = None, train: bool = False) -> Dict[str, List[ImageRecord]]:
    """The records of :func:`build_test_split` (validation uses them)."""
    return build_test_split(cfg, root, train)[0]


def build_train_loader(cfg, records: Sequence[ImageRecord], rank: int = 0,
                       world_size: int = 1) -> Tuple[DataLoader, PKSampler]:
    """P×K loader for this rank; call ``sampler.set_epoch(e)`` before iterating epoch ``e``."""
    sampler = PKSampler([r.pid for r in records], cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE,
                        seed=cfg.SOLVER.SEED, rank=rank, world_size=world_size,
                        iters_per_epoch=cfg.SOLVER.ITERS_PER_EPOCH)
    workers = cfg.DATALOADER.NUM_WORKERS
    _single_threaded_opencv(workers)
    loader = DataLoader(ReIDDataset(records, build_transforms(cfg, is_train=True)),
                        batch_size=cfg.SOLVER.IMS_PER_BATCH, sampler=sampler, num_workers=workers,
                        collate_fn=collate, drop_last=True, persistent_workers=False,
                        pin_memory=torch.cuda.is_available())
    return loader, sampler


def build_test_loader(cfg, records: Sequence[ImageRecord], batch_size: Optional[int] = None,
                      split: Optional[str] = None) -> DataLoader:
    """In-order loader with the test transform of ``split`` (used by validation and extraction alike)."""
    _single_threaded_opencv(cfg.DATALOADER.NUM_WORKERS)
    return DataLoader(ReIDDataset(records, build_transforms(cfg, is_train=False, split=split)),
                      batch_size=batch_size or cfg.TEST.IMS_PER_BATCH, shuffle=False,
                      num_workers=cfg.DATALOADER.NUM_WORKERS, collate_fn=collate,
                      pin_memory=torch.cuda.is_available(),
                      generator=torch.Generator())  # own generator: iterating never draws from the global RNG
