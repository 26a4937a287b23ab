"""Your own images: the ``folder`` loader (one sub-folder per identity) and the ``csv`` loader
(``path,pid,camid[,trackid]`` lists).

``folder``: ``train/<identity>/*.jpg`` for training; ``query/`` and ``gallery/`` hold either one
sub-folder per identity (evaluated) or the images directly (identity unknown: rankings only).
Identity folders named by numbers keep their number; otherwise identities are numbered in sorted
name order over query and gallery together. The camera comes from ``camera=REGEX`` (its first
group, searched in the file name) or is unknown.

``csv``: ``train.csv``, ``query.csv``, ``gallery.csv`` in the root, one image per line
``path,pid,camid[,trackid]`` with paths relative to the CSV; an optional header line names the
columns, and further named columns become attributes (``subsets=night+rain`` scores the queries
whose column is 1/true on their own too). An empty or negative ``camid`` means unknown.

Without any camera id the evaluation removes only the query image itself from its gallery (see
:mod:`.scoring`). ``train/``/``train.csv`` may be missing for test-only data. Feature files key
images by file name, so file names must be unique within a split.
"""
from __future__ import annotations

import csv
import io
import os
import re
from typing import Dict, List, Optional, Tuple

from . import DatasetError, DatasetSplits, register
from ..records import ImageRecord
from .common import _decode, _read_bytes, list_images, parse_attr, require_dir, require_records, require_root

_SPLITS = ("train", "query", "gallery")
_BASE_COLUMNS = ("path", "pid", "camid", "trackid")
_TRUE = {"1", "true", "yes", "y"}


def _unique_names(loader: str, split: str, records: List[ImageRecord]) -> List[ImageRecord]:
    seen: Dict[str, str] = {}
    for r in records:
        if r.name in seen:
            raise DatasetError(f"{loader} loader: {split} has two images named {r.name} ({seen[r.name]} and "
                               f"{r.path}); feature files key images by file name: rename one")
        seen[r.name] = r.path
    return records


def _camera_pattern(loader: str, camera: Optional[str]) -> Optional["re.Pattern[str]"]:
    if not camera:
        return None
    try:
        pattern = re.compile(camera)
    except re.error as exc:
        raise DatasetError(f"{loader} loader: camera={camera!r} is not a regular expression ({exc})") from None
    if pattern.groups < 1:
        raise DatasetError(f"{loader} loader: camera={camera!r} needs a group that captures the camera id, "
                           f"e.g. 'c(\\d+)'")
    return pattern


def _camid(loader: str, pattern, path: str) -> int:
    if pattern is None:
        return -1
    match = pattern.search(os.path.basename(path))
    if not match or not match.group(1).isdigit():
        raise DatasetError(f"{loader} loader: camera pattern '{pattern.pattern}' finds no camera number in "
                           f"{os.path.basename(path)} ({path})")
    return int(match.group(1))


def _identity_folders(folder: str) -> List[str]:
    return sorted(n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n)))


def _number_ids(names: List[str]) -> Dict[str, int]:
    """Folder name → id: its number when every name is one, else its place in sorted order."""
    if all(n.isdigit() for n in names):
        return {n: int(n) for n in names}
    return {n: i for i, n in enumerate(sorted(names))}


@register("folder", "train/<identity>/*.jpg; query/, gallery/ (images, or one sub-folder per identity)",
          "Market-1501 rules (camera from camera=REGEX; none: only the query image itself is removed)")
def load_folder(root: str, camera: Optional[str] = None, train: bool = True) -> DatasetSplits:
    """Images in identity folders at ``root``; ``camera`` a regex whose first group is the camera."""
    loader = "folder"
    root = require_root(loader, root)
    pattern = _camera_pattern(loader, camera)
    test_dirs = [require_dir(loader, root, split, f"the {split} images") for split in ("query", "gallery")]
    test_ids = _number_ids(sorted({n for d in test_dirs for n in _identity_folders(d)}))
    splits: Dict[str, List[ImageRecord]] = {"train": []}
    for split in _SPLITS:
        folder = os.path.join(root, split)
        if split == "train" and (not train or not os.path.isdir(folder)):
            continue
        subdirs = _identity_folders(folder)
        ids = _number_ids(subdirs) if split == "train" else test_ids
        entries = [(os.path.join(folder, d, f), ids[d]) for d in subdirs for f in list_images(os.path.join(folder, d))]
        if split != "train":  # images directly in query/ or gallery/: identity unknown
            entries += [(os.path.join(folder, f), -1) for f in list_images(folder)]
        records = [ImageRecord(path, pid, _camid(loader, pattern, path)) for path, pid in entries]
        splits[split] = _unique_names(loader, split, require_records(loader, records, f"{folder} (or its sub-folders)"))
    return DatasetSplits(loader, root, **splits)


def _int_field(path: str, number: int, column: str, text: str) -> int:
    text = text.strip()
    if not text:
        return -1
    try:
        return int(text)
    except ValueError:
        raise DatasetError(f"csv loader: {path}:{number}: column {column} must be an integer, got {text!r}") from None


def _read_csv(path: str, subsets: Tuple[str, ...]) -> List[ImageRecord]:
    text = _decode(_read_bytes(path), path)
    rows = [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text)), 1)
            if row and any(cell.strip() for cell in row)]
    columns = list(_BASE_COLUMNS)
    if rows and rows[0][1][0].strip().lower() == "path":
        columns = [c.strip() for c in rows[0][1]]
        if columns[:3] != ["path", "pid", "camid"]:
            raise DatasetError(f"csv loader: {path}:{rows[0][0]}: the header must start with path,pid,camid, "
                               f"got {','.join(columns)}")
        rows = rows[1:]
    missing = [s for s in subsets if s not in columns]
    if missing:
        raise DatasetError(f"csv loader: {path}: subsets names column(s) {', '.join(missing)}, which the header "
                           f"({','.join(columns)}) lacks")
    base = os.path.dirname(os.path.abspath(path))
    records = []
    for number, row in rows:
        if len(row) < 3 or len(row) > len(columns):
            raise DatasetError(f"csv loader: {path}:{number}: expected {','.join(columns[:4])}, got {','.join(row)!r}")
        cells = dict(zip(columns, row))
        image = os.path.join(base, cells["path"].strip())
        if not os.path.isfile(image):
            raise DatasetError(f"csv loader: {path}:{number}: image {image} does not exist (paths are relative "
                               f"to the CSV)")
        attrs = {c: parse_attr(v) for c, v in cells.items() if c not in _BASE_COLUMNS}
        for s in subsets:
            attrs[s] = str(cells.get(s, "")).strip().lower() in _TRUE
        records.append(ImageRecord(image, _int_field(path, number, "pid", cells["pid"]),
                                   _int_field(path, number, "camid", cells["camid"]),
                                   trackid=_int_field(path, number, "trackid", cells.get("trackid", "")),
                                   attrs=attrs))
    return require_records("csv", records, path)


@register("csv", "{train,query,gallery}.csv: path,pid,camid[,trackid] (paths relative to the CSV)",
          "Market-1501 rules (no camid: only the query image itself is removed)")
def load_csv(root: str, subsets: str = "", train: bool = True) -> DatasetSplits:
    """CSV lists at ``root``; ``subsets`` names 0/1 columns of query.csv (``a+b``) scored on their own."""
    loader = "csv"
    root = require_root(loader, root)
    names = tuple(s.strip() for s in str(subsets).split("+") if s.strip())
    splits: Dict[str, List[ImageRecord]] = {"train": []}
    for split in _SPLITS:
        path = os.path.join(root, f"{split}.csv")
        if split == "train" and (not train or not os.path.isfile(path)):
            continue
        if not os.path.isfile(path):
            raise DatasetError(f"csv loader: missing {path} (expected {split}.csv: path,pid,camid[,trackid] per image)")
        records = _read_csv(path, names if split == "query" else ())
        splits[split] = _unique_names(loader, split, records)
    return DatasetSplits(loader, root, **splits, subsets=names)
