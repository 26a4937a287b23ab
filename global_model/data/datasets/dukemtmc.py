"""DukeMTMC-reID (Market layout): names ``PPPP_cC_fFFFFFFF.jpg``; every id is labelled (the 408
gallery-only distractor ids are ordinary ids that no query has)."""
from __future__ import annotations

import re

from . import DatasetSplits, register
from .market_layout import load_market_layout

_NAME = re.compile(r"^([-\d]+)_c(\d+)")


@register("dukemtmc", "{bounding_box_train,query,bounding_box_test}/PPPP_cC_fFFFFFFF.jpg",
          "Market-1501 rules (same id and camera is junk)")
def load_dukemtmc(root: str, train: bool = True) -> DatasetSplits:
    """DukeMTMC-reID at ``root`` (the folder holding ``bounding_box_train/`` etc.)."""
    splits = load_market_layout("dukemtmc", root, _NAME, "0001_c2_f0046182.jpg", lambda pid, split: True,
                                train=train)
    return DatasetSplits("dukemtmc", str(root), **splits)
