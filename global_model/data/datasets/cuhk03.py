"""CUHK03 from the raw release: ``cuhk03_release/cuhk-03.mat`` (MATLAB v7.3, read with h5py) and the
new-protocol files ``cuhk03_new_protocol_config_{labeled,detected}.mat`` (MATLAB v5, scipy).

``cuhk-03.mat``: ``labeled``/``detected`` hold 5 refs (one per camera pair) to [num_pids, 10] cells
of image refs, columns 0–4 view 1 and 5–9 view 2, empty cells skipped. Images are extracted once
to ``images_{variant}/{campair}_{pid:03d}_{view}_{img:02d}.png`` (all 1-based; written to a
``.partial`` folder that is renamed when complete). ``testsets`` holds the 20 classic splits of
100 (campair, pid) test ids each.

``protocol=new`` (767 train / 700 test ids): ``filelist``, ``labels`` and **1-based**
``train_idx``/``query_idx``/``gallery_idx``; the camera is the view in the file name (minus 1);
scored with the Market rules. ``protocol=classic``: split ``split`` (0..19): its 100 test ids are
both query and gallery (the query itself is removed as same id and view), the other 1367 ids
train; scored with the CUHK03 single-shot metric (CMC over 10 random one-image-per-id
galleries). Published papers average the 20 splits, one model trained per split.

Each split is cached as JSON beside the .mat files (``splits_{new,classic}_{variant}.json``), keyed
by the size and time of the files it was read from. An HTML page saved as ``.mat`` (a failed
download) or a truncated file is named as such.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from post_processing.fileio import atomic_write

from . import DatasetError, DatasetSplits, register
from ..records import ImageRecord
from .common import require_choice, require_root
from .cuhk03_np import VARIANTS, count_note

LOADER = "cuhk03"
RAW = os.path.join("cuhk03_release", "cuhk-03.mat")
PROTOCOLS = ("new", "classic")
CLASSIC_SPLITS = 20
_IMAGE = re.compile(r"^(\d)_(\d{3})_([12])_(\d{2})\.png$")
_NEW_KEYS = ("filelist", "labels", "train_idx", "query_idx", "gallery_idx")


def _describe_bad_file(path: str, expected: str) -> str:
    """Why ``path`` is not the MATLAB file it should be, in words."""
    with open(path, "rb") as f:
        head = f.read(1024)
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:512]:
        return (f"{LOADER} loader: {path} is an HTML page, not a MATLAB file (a failed download saved as .mat?): "
                f"download it again")
    if not head:
        return f"{LOADER} loader: {path} is empty: download it again"
    return f"{LOADER} loader: {path} is not {expected}"


def _stamp(paths: Sequence[str]) -> List[List[Any]]:
    return [[os.path.basename(p), os.path.getsize(p), os.stat(p).st_mtime_ns] for p in paths]


def _read_cache(path: str, stamp: Optional[List[List[Any]]]) -> Any:
    """The cached JSON's ``data`` when it was written from the same files (any files when ``stamp`` is
    None: the source is gone), else None."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(cached, dict) or (stamp is not None and cached.get("source") != stamp):
        return None
    return cached.get("data")


def _write_cache(path: str, stamp: List[List[Any]], data: Any) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump({"source": stamp, "data": data}, f)


# ----------------------------------------------------------------------------- cuhk-03.mat (HDF5)

def _open_raw(path: str):
    try:
        import h5py
    except ImportError:
        raise DatasetError(f"{LOADER} loader: reading {path} (MATLAB v7.3) needs h5py: pip install h5py") from None

    if not h5py.is_hdf5(path):
        raise DatasetError(_describe_bad_file(path, "MATLAB v7.3 (HDF5), as cuhk-03.mat is shipped"))
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{LOADER} loader: {path} is truncated or damaged ({exc}): download it again") from None


def _deref(mat, ref, path: str, what: str) -> np.ndarray:
    try:
        return mat[ref][()].T
    except (KeyError, ValueError, OSError) as exc:
        raise DatasetError(f"{LOADER} loader: {path}: cannot read {what} ({exc}); the file is damaged") from None


def _extract(mat, path: str, variant: str, out_dir: str) -> Tuple[List[List[Any]], List[List[List[int]]]]:
    """Write every image of ``variant`` to ``out_dir``; returns ``(images, testsets)``: images as
    ``[name, global pid, camid]`` (global pid 1-based over the camera pairs in order) and the 20 test
    sets as lists of [campair, pid] (1-based)."""
    if variant not in mat or "testsets" not in mat:
        raise DatasetError(f"{LOADER} loader: {path} lacks '{variant}' or 'testsets' (keys: {', '.join(mat.keys())})")
    os.makedirs(out_dir, exist_ok=True)
    images, offset = [], 0
    for pair, pair_ref in enumerate(np.asarray(mat[variant]).reshape(-1), 1):
        cells = _deref(mat, pair_ref, path, f"{variant} camera pair {pair}")
        for pid, row in enumerate(cells, 1):
            for col, img_ref in enumerate(row):
                img = _deref(mat, img_ref, path, f"{variant} pair {pair} person {pid} image {col + 1}")
                if img.size == 0 or img.ndim < 3:
                    continue  # empty cell: this person has fewer images in this view
                view = 1 if col < 5 else 2
                name = f"{pair}_{pid:03d}_{view}_{col + 1:02d}.png"
                if not cv2.imwrite(os.path.join(out_dir, name), np.ascontiguousarray(img[..., ::-1])):
                    raise DatasetError(f"{LOADER} loader: cannot write {os.path.join(out_dir, name)}")
                images.append([name, offset + pid, view - 1])
        offset += len(cells)
    testsets = [[[int(c), int(p)] for c, p in _deref(mat, ref, path, f"test set {i}").reshape(-1, 2)]
                for i, ref in enumerate(np.asarray(mat["testsets"]).reshape(-1))]
    return images, testsets


def _raw_data(root: str, variant: str) -> Dict[str, Any]:
    """``{"images", "testsets"}`` of ``variant`` from the JSON cache, else from cuhk-03.mat (extracting
    the images when ``images_<variant>/`` does not exist yet)."""
    raw = os.path.join(root, RAW)
    cache = os.path.join(root, f"splits_classic_{variant}.json")
    image_dir = os.path.join(root, f"images_{variant}")
    if not os.path.isfile(raw):
        data = _read_cache(cache, None) if os.path.isdir(image_dir) else None
        if data is None:
            raise DatasetError(f"{LOADER} loader: missing {raw} (the raw CUHK03 release; the classic splits and "
                               f"the image extraction need it)")
        return data
    stamp = _stamp([raw])
    data = _read_cache(cache, stamp)
    if data is not None and os.path.isdir(image_dir):
        return data
    with _open_raw(raw) as mat:
        partial = image_dir + ".partial"
        images, testsets = _extract(mat, raw, variant, image_dir if os.path.isdir(image_dir) else partial)
    if not os.path.isdir(image_dir):
        os.replace(partial, image_dir)
    data = {"images": images, "testsets": testsets}
    _write_cache(cache, stamp, data)
    return data


# ----------------------------------------------------------------------------- new protocol (MATLAB v5)

def _read_protocol(path: str) -> Dict[str, np.ndarray]:
    import scipy.io

    with open(path, "rb") as f:
        head = f.read(128)
    if not head.startswith(b"MATLAB 5.0 MAT-file"):
        raise DatasetError(_describe_bad_file(path, "a MATLAB v5 file (the cuhk03_new_protocol_config .mat "
                                                    "of person-re-ranking)"))
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, TypeError, OSError, EOFError) as exc:
        raise DatasetError(f"{LOADER} loader: {path} is truncated or damaged ({exc}): download it again") from None
    missing = [k for k in _NEW_KEYS if k not in mat]
    if missing:
        raise DatasetError(f"{LOADER} loader: {path} lacks {', '.join(missing)} (expected {', '.join(_NEW_KEYS)})")
    return mat


def _new_split(path: str) -> Dict[str, List[List[Any]]]:
    """``{"train", "query", "gallery"}`` as ``[name, pid, camid]`` from the 1-based index fields."""
    mat = _read_protocol(path)
    names = [str(np.asarray(entry).reshape(-1)[0]) for entry in np.asarray(mat["filelist"]).reshape(-1)]
    labels = np.asarray(mat["labels"]).reshape(-1).astype(np.int64)
    if len(labels) != len(names):
        raise DatasetError(f"{LOADER} loader: {path}: {len(names)} filelist entries but {len(labels)} labels")
    out = {}
    for split in ("train", "query", "gallery"):
        idx = np.asarray(mat[f"{split}_idx"]).reshape(-1).astype(np.int64)
        bad = idx[(idx < 1) | (idx > len(names))]
        if len(bad):
            raise DatasetError(f"{LOADER} loader: {path}: {split}_idx holds {int(bad[0])}, outside 1..{len(names)} "
                               f"(the indices are 1-based into filelist)")
        rows = []
        for i in idx - 1:
            match = _IMAGE.match(names[i])
            if not match:
                raise DatasetError(f"{LOADER} loader: {path}: filelist entry {i + 1} is {names[i]!r}, expected a "
                                   f"name like 1_001_1_01.png")
            rows.append([names[i], int(labels[i]), int(match.group(3)) - 1])
        out[split] = rows
    return out


def _records(image_dir: str, rows: List[List[Any]]) -> List[ImageRecord]:
    missing = [r[0] for r in rows if not os.path.isfile(os.path.join(image_dir, r[0]))]
    if missing:
        raise DatasetError(f"{LOADER} loader: {len(missing)} image(s) of the split are missing from {image_dir}, "
                           f"first {missing[0]}: delete the folder to extract it again from {RAW}")
    return [ImageRecord(os.path.join(image_dir, name), pid, camid) for name, pid, camid in rows]


@register(LOADER, "cuhk03_release/cuhk-03.mat (+ cuhk03_new_protocol_config_{labeled,detected}.mat)",
          "new: Market-1501 rules; classic: CUHK03 single-shot CMC (10 draws), split=0..19")
def load_cuhk03(root: str, variant: str = "detected", protocol: str = "new", split: int = 0,
                train: bool = True) -> DatasetSplits:
    """CUHK03 at ``root`` (holding ``cuhk03_release/``); ``variant`` labeled|detected, ``protocol``
    new|classic, ``split`` the classic split (0..19)."""
    variant = require_choice(LOADER, "variant", variant, VARIANTS)
    protocol = require_choice(LOADER, "protocol", protocol, PROTOCOLS)
    split = require_choice(LOADER, "split", split, range(CLASSIC_SPLITS))
    root = require_root(LOADER, root)
    image_dir = os.path.join(root, f"images_{variant}")
    if protocol == "classic":
        data = _raw_data(root, variant)
        if split >= len(data["testsets"]):
            raise DatasetError(f"{LOADER} loader: {os.path.join(root, RAW)} has {len(data['testsets'])} test sets, "
                               f"no split {split}")
        test_ids = {tuple(t) for t in data["testsets"][split]}
        is_test = [(int(n[0]), int(n[2:5])) in test_ids for n, _, _ in data["images"]]
        test = [row for row, t in zip(data["images"], is_test) if t]
        rows = {"train": [row for row, t in zip(data["images"], is_test) if not t] if train else [],
                "query": test, "gallery": test}
        return DatasetSplits(LOADER, root, **{k: _records(image_dir, v) for k, v in rows.items()},
                             protocol="cuhk03", protocol_options={"repeats": 10},
                             protocol_label=f"CUHK03 classic split {split} ({variant}): single-shot CMC, 10 draws")
    config = os.path.join(root, f"cuhk03_new_protocol_config_{variant}.mat")
    if not os.path.isfile(config):
        raise DatasetError(f"{LOADER} loader: missing {config} (the new-protocol split, from the person-re-ranking "
                           f"repository: evaluation/data/CUHK03)")
    if not os.path.isdir(image_dir):
        _raw_data(root, variant)
    stamp = _stamp([config])
    cache = os.path.join(root, f"splits_new_{variant}.json")
    rows = _read_cache(cache, stamp)
    if rows is None:
        rows = _new_split(config)
        _write_cache(cache, stamp, rows)
    ds = DatasetSplits(LOADER, root, _records(image_dir, rows["train"]) if train else [],
                       _records(image_dir, rows["query"]), _records(image_dir, rows["gallery"]),
                       protocol_label=f"CUHK03 new protocol ({variant}): Market-1501 rules")
    count_note(LOADER, variant, ds)
    return ds
