"""The Market-1501 folder layout, shared by Market-1501, DukeMTMC-reID, CUHK03-NP and PRW-reid:
``bounding_box_train/``, ``query/``, ``bounding_box_test/`` with ids and cameras in the file names.

Each loader passes its naming pattern (groups: id, camera) and its rule for which ids a split keeps
(junk, distractors, unlabelled boxes). Cameras are made 0-based. Other files (``Thumbs.db``) are ignored.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Pattern, Tuple

from ..records import ImageRecord
from .common import match_name, require_dir, require_records, require_root

FOLDERS = (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))


def load_market_layout(loader: str, root: str, pattern: Pattern[str], example: str, keep: Callable[[int, str], bool],
                       extensions: Tuple[str, ...] = (".jpg",), train: bool = True) -> Dict[str, List[ImageRecord]]:
    """``{"train", "query", "gallery"}`` records of the layout at ``root`` (train empty without
    ``train``: ``bounding_box_train/`` is then not needed); ``keep(pid, split)`` decides each image."""
    root = require_root(loader, root)
    splits: Dict[str, List[ImageRecord]] = {"train": []}
    for split, folder_name in FOLDERS:
        if split == "train" and not train:
            continue
        folder = require_dir(loader, root, folder_name, f"the {split} images")
        records = []
        for name in sorted(os.listdir(folder)):
            if not name.lower().endswith(extensions):
                continue
            match = match_name(loader, pattern, name, folder, example)
            pid = int(match.group(1))
            if keep(pid, split):
                records.append(ImageRecord(os.path.join(folder, name), pid, int(match.group(2)) - 1))
        splits[split] = require_records(loader, records, folder)
    return splits
