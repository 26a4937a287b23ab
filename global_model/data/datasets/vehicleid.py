"""VehicleID (PKU): ``image/NNNNNNN.jpg`` and ``train_test_split/{train_list,test_list_N}.txt``.

No cameras. Test protocol: per repeat, one random image of each test id is the gallery and the
rest are queries, repeated 10 times with different draws; metrics are averaged over the draws.
Queries get camid 0 and the gallery camid 1 so the Market-style same-camera junk rule removes
nothing. The draws come from :func:`post_processing.evaluation.vehicleid_draw`, the function the
``vehicleid`` protocol uses: draw ``repeat=r`` of the loader is draw r of the evaluator.
"""
from __future__ import annotations

import os
from typing import Iterator, List, Tuple

from post_processing.evaluation import draw_keys, vehicleid_draw

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


def _read(root: str, test_size, train: bool = True) -> Tuple[List[ImageRecord], List[Tuple[str, int]]]:
    """Train records (none without ``train``) and raw test pairs; checks that every image exists."""
    loader = "vehicleid"
    size = require_choice(loader, "test_size", test_size, TEST_SIZES)
    root = require_root(loader, root)
    image_dir = require_dir(loader, root, "image", "the images")
    train_pairs: List[Tuple[str, int]] = []
    if train:
        train_pairs = _read_list(require_file(loader, root, "train_test_split/train_list.txt", "the training list"))
        require_records(loader, train_pairs, os.path.join(root, "train_test_split/train_list.txt"))
    test_list = f"train_test_split/test_list_{size}.txt"
    test_pairs = _read_list(require_file(loader, root, test_list, f"the {size}-id test list"))
    require_records(loader, test_pairs, os.path.join(root, test_list))
    check_listed(loader, image_dir, [name for name, _ in train_pairs + test_pairs],
                 f"train_list.txt / test_list_{size}.txt")
    train = [ImageRecord(os.path.join(image_dir, name), pid, 0) for name, pid in train_pairs]
    return train, [(os.path.join(image_dir, name), pid) for name, pid in test_pairs]


def _draw(test: List[Tuple[str, int]], seed: int, repeat: int) -> Tuple[List[ImageRecord], List[ImageRecord]]:
    """(query, gallery) of draw ``repeat``: :func:`vehicleid_draw` picks one gallery image per id (by
    image name, so the evaluator re-draws the same split from the images in any order)."""
    keys = draw_keys(len(test), repeat + 1, seed, [os.path.basename(path) for path, _ in test])[repeat]
    chosen = set(vehicleid_draw([pid for _, pid in test], keys).tolist())
    gallery = [ImageRecord(path, pid, GALLERY_CAMID) for i, (path, pid) in enumerate(test) if i in chosen]
    query = [ImageRecord(path, pid, QUERY_CAMID) for i, (path, pid) in enumerate(test) if i not in chosen]
    return query, gallery


@register("vehicleid", "image/*.jpg + train_test_split/{train_list,test_list_N}.txt",
          "VehicleID: mean over the 10 query/gallery draws of the test list")
def load_vehicleid(root: str, test_size: int = 800, repeat: int = 0, seed: int = 0,
                   train: bool = True) -> DatasetSplits:
    """VehicleID with test list ``test_size`` and query/gallery draw number ``repeat`` (0..9); query
    and gallery together are the whole test list, which the ``vehicleid`` protocol re-draws 10 times.
    ``extra["draw"]`` names the loaded draw (``test_size``, ``repeat``, ``seed``)."""
    repeat = require_choice("vehicleid", "repeat", repeat, range(REPEATS))
    train_records, test = _read(root, test_size, train)
    query, gallery = _draw(test, seed, repeat)
    return DatasetSplits("vehicleid", os.fspath(root), train_records, query, gallery,
                         extra={"draw": {"test_size": test_size, "repeat": repeat, "seed": seed}}, protocol="vehicleid",
                         protocol_options={"repeats": REPEATS, "seed": seed},
                         protocol_label=f"VehicleID test {test_size}: mean over {REPEATS} query/gallery draws")


def vehicleid_splits(root: str, test_size: int = 800, repeats: int = REPEATS,
                     seed: int = 0) -> Iterator[Tuple[List[ImageRecord], List[ImageRecord]]]:
    """The ``repeats`` (query, gallery) draws of the protocol; draw r equals ``load_vehicleid(repeat=r)``."""
    _, test = _read(root, test_size, train=False)
    for r in range(repeats):
        yield _draw(test, seed, r)
