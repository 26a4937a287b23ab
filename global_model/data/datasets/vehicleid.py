"""VehicleID (PKU): ``image/NNNNNNN.jpg`` and ``train_test_split/{train_list,test_list_N}.txt``.

No cameras. Test protocol: per repeat, one random image of each test id is the gallery and the
rest are queries, repeated 10 times with different draws. Queries get camid 0 and the gallery
camid 1 so the Market-style same-camera junk rule removes nothing.
"""
from __future__ import annotations

import os
import random
from typing import Dict, Iterator, List, Tuple

from . import DatasetError, DatasetSplits, register
from ..records import ImageRecord
from .common import (check_listed, iter_text_lines, require_choice, require_dir, require_file, require_records,
                     require_root, with_extension)

TEST_SIZES = (800, 1600, 2400)
REPEATS = 10
QUERY_CAMID, GALLERY_CAMID = 0, 1


def _read_list(path: str) -> List[Tuple[str, int]]:
    """``(image file name, vehicle id)`` per line ``<image> <vehicle_id>`` (image with or without .jpg)."""
    pairs = []
    for number, line in iter_text_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise DatasetError(f"vehicleid loader: {path}:{number}: expected '<image> <vehicle_id>', got {line!r}")
        pairs.append((with_extension(parts[0]), int(parts[1])))
    return pairs


def _read(root: str, test_size) -> Tuple[List[ImageRecord], List[Tuple[str, int]]]:
    """Train records and raw test pairs; checks that every image exists."""
    loader = "vehicleid"
    size = require_choice(loader, "test_size", test_size, TEST_SIZES)
    root = require_root(loader, root)
    image_dir = require_dir(loader, root, "image", "the images")
    train_pairs = _read_list(require_file(loader, root, "train_test_split/train_list.txt", "the training list"))
    test_list = f"train_test_split/test_list_{size}.txt"
    test_pairs = _read_list(require_file(loader, root, test_list, f"the {size}-id test list"))
    require_records(loader, train_pairs, os.path.join(root, "train_test_split/train_list.txt"))
    require_records(loader, test_pairs, os.path.join(root, test_list))
    check_listed(loader, image_dir, [name for name, _ in train_pairs + test_pairs],
                 f"train_list.txt / test_list_{size}.txt")
    train = [ImageRecord(os.path.join(image_dir, name), pid, 0) for name, pid in train_pairs]
    return train, [(os.path.join(image_dir, name), pid) for name, pid in test_pairs]


def _draw(test: List[Tuple[str, int]], seed: int) -> Tuple[List[ImageRecord], List[ImageRecord]]:
    """(query, gallery): one image per id drawn with ``random.Random(seed)`` is the gallery."""
    by_id: Dict[int, List[str]] = {}
    for path, pid in test:
        by_id.setdefault(pid, []).append(path)
    rng = random.Random(seed)
    chosen = {pid: paths[rng.randrange(len(paths))] for pid, paths in by_id.items()}
    gallery = [ImageRecord(chosen[pid], pid, GALLERY_CAMID) for pid in by_id]
    query = [ImageRecord(path, pid, QUERY_CAMID) for path, pid in test if path != chosen[pid]]
    return query, gallery


@register("vehicleid")
def load_vehicleid(root: str, test_size: int = 800, repeat: int = 0, seed: int = 0) -> DatasetSplits:
    """VehicleID with test list ``test_size`` and query/gallery draw number ``repeat`` (0..9)."""
    repeat = require_choice("vehicleid", "repeat", repeat, range(REPEATS))
    train, test = _read(root, test_size)
    query, gallery = _draw(test, seed + repeat)
    return DatasetSplits("vehicleid", os.fspath(root), train, query, gallery)


def vehicleid_splits(root: str, test_size: int = 800, repeats: int = REPEATS,
                     seed: int = 0) -> Iterator[Tuple[List[ImageRecord], List[ImageRecord]]]:
    """The ``repeats`` (query, gallery) draws of the protocol; draw r equals ``load_vehicleid(repeat=r)``."""
    _, test = _read(root, test_size)
    for r in range(repeats):
        yield _draw(test, seed + r)
