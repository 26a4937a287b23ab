"""MSMT17: ``list_{train,val,query,gallery}.txt`` (lines ``<pid folder>/<image> <pid>``) with images
under ``train/`` (train and val lists) and ``test/`` (query and gallery lists); the V2 release names
the folders ``mask_train_v2/`` and ``mask_test_v2/``.

Image names are ``PPPP_NNN_CC_<time>_....jpg`` with the camera (1..15) in the third field; cameras
are made 0-based. ``list_val.txt`` joins the training split unless ``use_val=False`` (as torchreid
and fast-reid do). Published counts: 32621 train+val images of 1041 ids, 11659 queries, 82161
gallery images of 3060 ids.
"""
from __future__ import annotations

import os
from typing import List

from . import DatasetError, DatasetSplits, register
from ..records import ImageRecord
from .common import check_listed, iter_text_lines, require_file, require_records, require_root

_FOLDERS = (("train", "test"), ("mask_train_v2", "mask_test_v2"))


def _read_list(path: str, base: str) -> List[ImageRecord]:
    records = []
    for number, line in iter_text_lines(path):
        parts = line.split()
        fields = os.path.basename(parts[0]).split("_") if parts else []
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or len(fields) < 3 or not fields[2].isdigit():
            raise DatasetError(f"msmt17 loader: {path}:{number}: expected '<pid>/<PPPP_NNN_CC_...>.jpg <pid>', "
                               f"got {line!r}")
        records.append(ImageRecord(os.path.join(base, parts[0]), int(parts[1]), int(fields[2]) - 1))
    return require_records("msmt17", records, path)


@register("msmt17", "list_{train,val,query,gallery}.txt + train/, test/ (V2: mask_train_v2/, mask_test_v2/)",
          "Market-1501 rules (same id and camera is junk)")
def load_msmt17(root: str, use_val: bool = True, train: bool = True) -> DatasetSplits:
    """MSMT17 (V1 or V2) at ``root``."""
    loader = "msmt17"
    root = require_root(loader, root)
    folders = next((pair for pair in _FOLDERS if os.path.isdir(os.path.join(root, pair[1]))), None)
    if folders is None:
        raise DatasetError(f"msmt17 loader: {root} has neither test/ nor mask_test_v2/ (the query and gallery images)")
    train_dir, test_dir = (os.path.join(root, f) for f in folders)
    parts = [("query", test_dir), ("gallery", test_dir)]
    if train:
        parts = [("train", train_dir)] + ([("val", train_dir)] if use_val else []) + parts
    lists = {}
    for part, base in parts:
        path = require_file(loader, root, f"list_{part}.txt", f"the {part} images of {os.path.basename(base)}/")
        lists[part] = _read_list(path, base)
        check_listed(loader, base, [os.path.relpath(r.path, base) for r in lists[part]], path)
    train_records = lists.get("train", []) + lists.get("val", [])
    return DatasetSplits(loader, root, train_records, lists["query"], lists["gallery"])
