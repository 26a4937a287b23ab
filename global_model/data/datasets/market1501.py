"""Market-1501: ``bounding_box_train/``, ``bounding_box_test/``, ``query/``; names ``PPPP_cCsS_FFFFFF_BB.jpg``.

pid -1 marks junk boxes (dropped everywhere); pid 0000 marks distractors (kept in the gallery
only). Cameras are made 0-based. Non-JPEG files (Market ships ``Thumbs.db``) are ignored.
"""
from __future__ import annotations

import os
import re

from . import DatasetSplits, register
from ..records import ImageRecord
from .common import match_name, require_dir, require_records, require_root

_NAME = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)")
_SPLITS = (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))


@register("market1501")
def load_market1501(root: str) -> DatasetSplits:
    """Market-1501 at ``root`` (the folder holding ``bounding_box_train/`` etc.)."""
    loader = "market1501"
    root = require_root(loader, root)
    splits = {}
    for split, folder_name in _SPLITS:
        folder = require_dir(loader, root, folder_name, f"the {split} images")
        records = []
        for name in sorted(os.listdir(folder)):
            if not name.lower().endswith(".jpg"):
                continue
            match = match_name(loader, _NAME, name, folder, "0002_c1s1_000451_03.jpg")
            pid = int(match.group(1))
            if pid < 0 or (pid == 0 and split != "gallery"):
                continue
            records.append(ImageRecord(os.path.join(folder, name), pid, int(match.group(2)) - 1))
        splits[split] = require_records(loader, records, folder)
    return DatasetSplits(loader, root, **splits)
