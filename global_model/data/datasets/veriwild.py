"""VeRi-Wild: ``images/<vid>/<img>.jpg`` with lists ``train_test_split/*.txt`` of ``vid/img`` lines.

Camera ids exist only in ``train_test_split/vehicle_info.txt`` (``vid/img;camera;time;model;type;color``,
first line a header). Official protocol: the gallery is the whole ``test_N.txt`` list and the
queries are ``test_N_query.txt``; the query itself is removed by the same-id-same-camera junk rule.
"""
from __future__ import annotations

import os
from typing import Dict, List, Set, Tuple

from post_processing.fileio import IMAGE_EXTENSIONS

from . import DatasetError, DatasetSplits, register
from ..records import ImageRecord
from .common import (check_listed, iter_text_lines, require_choice, require_dir, require_file, require_records,
                     require_root)

TEST_SIZES = (3000, 5000, 10000)
_SPLIT_DIR = "train_test_split"


def _key(entry: str) -> str:
    """``vid/img`` without an image extension (lists and vehicle_info may or may not carry one)."""
    stem, ext = os.path.splitext(entry)
    return stem if ext.lower() in IMAGE_EXTENSIONS else entry


def _read_list(path: str) -> List[str]:
    keys = []
    for number, line in iter_text_lines(path):
        vid, sep, img = line.partition("/")
        if not sep or not vid.isdigit() or not img or len(line.split()) != 1:
            raise DatasetError(f"veriwild loader: {path}:{number}: expected 'vid/img', got {line!r}")
        keys.append(_key(line))
    return keys


def _read_info(path: str, needed: Set[str]) -> Dict[str, Tuple[int, Dict[str, str]]]:
    """``vid/img → (camera, attrs)`` for the ``needed`` keys; lines not shaped like data are skipped."""
    info = {}
    for _, line in iter_text_lines(path):
        fields = line.split(";")
        if len(fields) < 6 or not fields[1].strip().isdigit():
            continue  # header line ("id/image;Camera ID;...") or anything else that is not a record
        key = _key(fields[0].strip())
        if key in needed:
            info[key] = (int(fields[1]), {"time": fields[2].strip(), "model": ";".join(fields[3:-2]).strip(),
                                          "type": fields[-2].strip(), "color": fields[-1].strip()})
    return info


@register("veriwild", "images/<vid>/<img>.jpg + train_test_split/{train_list,test_N,test_N_query,vehicle_info}.txt",
          "Market-1501 rules on the 3000/5000/10000-id test split (test_size)")
def load_veriwild(root: str, test_size: int = 3000, train: bool = True) -> DatasetSplits:
    """VeRi-Wild at ``root`` with the small/medium/large test split ``test_size`` (3000/5000/10000)."""
    loader = "veriwild"
    size = require_choice(loader, "test_size", test_size, TEST_SIZES)
    root = require_root(loader, root)
    image_dir = require_dir(loader, root, "images", "one folder of images per vehicle id")
    lists = {"train": []}
    for split, rel, what in (("train", "train_list.txt", "the training list"),
                             ("query", f"test_{size}_query.txt", f"the {size}-id query list"),
                             ("gallery", f"test_{size}.txt", f"the {size}-id test list")):
        if split == "train" and not train:
            continue
        path = require_file(loader, root, f"{_SPLIT_DIR}/{rel}", what)
        lists[split] = require_records(loader, _read_list(path), path)
    info_path = require_file(loader, root, f"{_SPLIT_DIR}/vehicle_info.txt", "cameras and attributes per image")
    info = _read_info(info_path, {k for keys in lists.values() for k in keys})
    files = {key: key + ".jpg" for keys in lists.values() for key in keys}
    check_listed(loader, image_dir, files.values(), f"{_SPLIT_DIR}/*.txt")

    splits = {}
    for split, keys in lists.items():
        records = []
        for key in keys:
            if key not in info:
                raise DatasetError(f"{loader} loader: image {key} has no camera line in {info_path}")
            camid, attrs = info[key]
            records.append(ImageRecord(os.path.join(image_dir, files[key]), int(key.split("/")[0]), camid,
                                       attrs=dict(attrs)))
        splits[split] = records
    return DatasetSplits(loader, root, **splits, protocol_label=f"VeRi-Wild test {size}: Market-1501 rules")
