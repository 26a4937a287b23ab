"""FVRID (SJDL/RVSL): synthetic clear/foggy pairs and real foggy vehicles.

``FVRID_syn/{train,query,gallery}_{foggy,clear}/`` hold pairs under identical file names; records
are the foggy images with ``clear_path`` set to the twin. ``FVRID_real/{train,query,gallery}_foggy/``
has real fog and no clear images; ``FVRID_clear/{train,query,gallery}_clear/`` real clear images of
other identities (RVSL's unlabelled clear domain). Names look like ``00000_c013_298403_0.jpg``.
"""
from __future__ import annotations

import os
import re
from typing import Dict, List

from . import DatasetError, DatasetSplits, merge_train_sets, register
from ..records import ImageRecord
from .common import list_images, match_name, require_choice, require_dir, require_records, require_root

_NAME = re.compile(r"([-\d]+)_c(\d+)")
_PARTS = ("train", "query", "gallery")
SPLITS = ("syn", "real", "both", "clear")


def _records(root: str, domain: str, part: str) -> List[ImageRecord]:
    """Records of one part (train/query/gallery) of ``FVRID_<domain>`` (foggy images; the clear ones
    of ``FVRID_clear``); train drops pid < 0."""
    loader = "fvrid"
    base = os.path.join(root, f"FVRID_{domain}")
    kind = "clear" if domain == "clear" else "foggy"
    foggy_dir = require_dir(loader, base, f"{part}_{kind}", f"the {domain} {part} images")
    clear_dir = None
    if domain == "syn":
        clear_dir = require_dir(loader, base, f"{part}_clear", f"the clear twins of {part}_foggy")
    clear = set(list_images(clear_dir)) if clear_dir else set()
    records = []
    for name in list_images(foggy_dir):
        match = match_name(loader, _NAME, name, foggy_dir, "00000_c013_298403_0.jpg")
        try:
            pid, camid = int(match.group(1)), int(match.group(2))
        except ValueError:
            raise DatasetError(f"{loader} loader: bad vehicle id in {os.path.join(foggy_dir, name)}") from None
        if part == "train" and pid < 0:
            continue
        clear_path = None
        if clear_dir:
            if name not in clear:
                raise DatasetError(f"{loader} loader: foggy image {os.path.join(foggy_dir, name)} has no clear "
                                   f"twin {os.path.join(clear_dir, name)}")
            clear_path = os.path.join(clear_dir, name)
        records.append(ImageRecord(os.path.join(foggy_dir, name), pid, camid, clear_path=clear_path,
                                   attrs={"domain": domain}))
    return require_records(loader, records, foggy_dir)


@register("fvrid", "FVRID_syn/{train,query,gallery}_{foggy,clear}/, FVRID_real/{train,query,gallery}_foggy/, "
                   "FVRID_clear/{train,query,gallery}_clear/",
          "Market-1501 rules on the synthetic (split=syn), real-fog (real, both) or real-clear (clear) test set")
def load_fvrid(root: str, split: str = "syn", train: bool = True) -> DatasetSplits:
    """FVRID at ``root`` (holding ``FVRID_syn``/``FVRID_real``/``FVRID_clear``); ``split`` is syn, real,
    both or clear (``FVRID_clear`` alone, RVSL's real clear domain).

    ``both``: train is synthetic then real, ids relabelled by :func:`merge_train_sets` (disjoint, synthetic
    first; every record has ``attrs["domain"]`` for SJDL's separate classifiers); query/gallery are the
    real-fog test set.
    """
    loader = "fvrid"
    split = require_choice(loader, "split", split, SPLITS)
    root = require_root(loader, root)
    domains = ["syn", "real"] if split == "both" else [split]
    parts = _PARTS if train else _PARTS[1:]
    loaded: Dict[str, Dict[str, List[ImageRecord]]] = {
        domain: {part: _records(root, domain, part) for part in parts} for domain in domains}
    test = loaded[domains[-1]]
    train_records = loaded[domains[0]].get("train", [])
    if split == "both" and train:
        train_records, _ = merge_train_sets([train_records, loaded["real"]["train"]])
    return DatasetSplits(loader, root, train_records, test["query"], test["gallery"],
                         protocol_label=f"FVRID {'real' if split == 'both' else split} test set: Market-1501 rules")
