"""Market-1501: ``bounding_box_train/``, ``bounding_box_test/``, ``query/``; names ``PPPP_cCsS_FFFFFF_BB.jpg``.

pid -1 marks junk boxes (dropped everywhere); pid 0000 marks distractors (kept in the gallery
only). Cameras are made 0-based. Non-JPEG files (Market ships ``Thumbs.db``) are ignored.
"""
from __future__ import annotations

import re

from . import DatasetSplits, register
from .market_layout import load_market_layout

_NAME = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)")
LAYOUT = "{bounding_box_train,query,bounding_box_test}/PPPP_cCsS_FFFFFF_BB.jpg"


def _keep(pid: int, split: str) -> bool:
    """Junk (-1) nowhere; distractors (0) in the gallery only."""
    return pid > 0 or (pid == 0 and split == "gallery")


@register("market1501", LAYOUT, "Market-1501 rules (same id and camera is junk; -1 junk, 0 distractors)")
def load_market1501(root: str, train: bool = True) -> DatasetSplits:
    """Market-1501 at ``root`` (the folder holding ``bounding_box_train/`` etc.)."""
    splits = load_market_layout("market1501", root, _NAME, "0002_c1s1_000451_03.jpg", _keep, train=train)
    return DatasetSplits("market1501", str(root), **splits)
