"""PRW-reid, the cropped re-identification release of PRW (Market layout): names ``PPPP_cCsS_FFFFFF.jpg``.

pid -2 marks persons without an identity: they are left out of training and the queries and stay
in the gallery as distractors (they never match a query).
"""
from __future__ import annotations

import re

from . import DatasetSplits, register
from .market_layout import load_market_layout

_NAME = re.compile(r"^([-\d]+)_c(\d+)")
UNLABELLED = -2


def _keep(pid: int, split: str) -> bool:
    return pid >= 0 or (pid == UNLABELLED and split == "gallery")


@register("prw", "{bounding_box_train,query,bounding_box_test}/PPPP_cCsS_FFFFFF.jpg (pid -2: no identity)",
          "Market-1501 rules (pid -2 gallery boxes are distractors)")
def load_prw(root: str, train: bool = True) -> DatasetSplits:
    """PRW-reid at ``root`` (the folder holding ``bounding_box_train/`` etc.)."""
    splits = load_market_layout("prw", root, _NAME, "479_c1s1_000001.jpg", _keep, train=train)
    return DatasetSplits("prw", str(root), **splits)
