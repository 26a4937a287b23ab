"""CUHK03-NP, the folder release of the CUHK03 new protocol (767 training / 700 test ids):
``{labeled,detected}/{bounding_box_train,query,bounding_box_test}/*.png`` with Market-style names
``PPPP_cV_....png`` (V the view, 1 or 2). Published counts (train/query/gallery images): labeled
7368/1400/5328, detected 7365/1400/5332; other counts are reported as a note.
"""
from __future__ import annotations

import os
import re

from . import DatasetSplits, register
from .common import require_choice, require_root
from .market_layout import load_market_layout

_NAME = re.compile(r"^([-\d]+)_c(\d)")
VARIANTS = ("detected", "labeled")
PUBLISHED = {"labeled": (7368, 1400, 5328), "detected": (7365, 1400, 5332)}


def count_note(loader: str, variant: str, splits: DatasetSplits) -> None:
    """Add a note to ``splits`` when its image counts differ from the published new-protocol counts."""
    counts = (len(splits.train), len(splits.query), len(splits.gallery))
    expected = PUBLISHED[variant]
    if counts != expected and (counts[0] or counts[1:] != expected[1:]):
        splits.notes.append(f"{loader} {variant}: {counts[0]}/{counts[1]}/{counts[2]} train/query/gallery images, "
                            f"the published new protocol has {expected[0]}/{expected[1]}/{expected[2]}")


@register("cuhk03_np", "{labeled,detected}/{bounding_box_train,query,bounding_box_test}/PPPP_cV_*.png",
          "Market-1501 rules (CUHK03 new protocol; the view is the camera)")
def load_cuhk03_np(root: str, variant: str = "detected", train: bool = True) -> DatasetSplits:
    """CUHK03-NP at ``root`` (holding ``labeled/`` and ``detected/``); ``variant`` labeled|detected."""
    loader = "cuhk03_np"
    variant = require_choice(loader, "variant", variant, VARIANTS)
    base = os.path.join(require_root(loader, root), variant)
    splits = load_market_layout(loader, base, _NAME, "0001_c1_1.png", lambda pid, split: pid >= 0,
                                extensions=(".png", ".jpg"), train=train)
    ds = DatasetSplits(loader, str(root), **splits,
                       protocol_label=f"CUHK03 new protocol ({variant}): Market-1501 rules")
    count_note(loader, variant, ds)
    return ds
