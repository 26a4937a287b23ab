"""VeRi-776: ``image_{train,query,test}/`` with names ``VVVV_cCCC_FFFFFFFF_N.jpg``.

Ids and cameras come from the file names; ``train_label.xml`` / ``test_label.xml`` (gb2312-declared)
only add attributes such as colorID and typeID. Protocol: gallery images with the query's id and
camera are junk.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict

from . import DatasetSplits, register
from ..records import ImageRecord
from .common import (check_listed, list_images, match_name, read_labels, read_name_list, require_dir,
                     require_records, require_root)

_NAME = re.compile(r"^(\d+)_c(\d+)_")
_SPLITS = (("train", "image_train", "name_train.txt"),
           ("query", "image_query", "name_query.txt"),
           ("gallery", "image_test", "name_test.txt"))


@register("veri776", "image_{train,query,test}/VVVV_cCCC_FFFFFFFF_N.jpg (+ name_*.txt, *_label.xml)",
          "Market-1501 rules (same id and camera is junk)")
def load_veri776(root: str, train: bool = True) -> DatasetSplits:
    """VeRi-776 at ``root``; split order follows ``name_*.txt`` when present, else sorted file names."""
    loader = "veri776"
    root = require_root(loader, root)
    attrs: Dict[str, Dict[str, Any]] = {}
    for label_file in ("train_label.xml", "test_label.xml"):
        path = os.path.join(root, label_file)
        if os.path.isfile(path):
            attrs.update({name: label.attrs for name, label in read_labels(loader, path).items()})
    splits = {"train": []}
    for split, folder_name, list_name in _SPLITS:
        if split == "train" and not train:
            continue
        folder = require_dir(loader, root, folder_name, f"the {split} images")
        list_path = os.path.join(root, list_name)
        if os.path.isfile(list_path):
            names = read_name_list(list_path)
            check_listed(loader, folder, names, list_path)
        else:
            names = list_images(folder)
        records = []
        for name in names:
            match = match_name(loader, _NAME, name, folder, "0002_c002_00030600_0.jpg")
            records.append(ImageRecord(os.path.join(folder, name), int(match.group(1)), int(match.group(2)),
                                       attrs=dict(attrs.get(name, {}))))
        splits[split] = require_records(loader, records, folder)
    return DatasetSplits(loader, root, **splits)
