"""AIC20 track 2 (CityFlow-ReID) and its VehicleX simulation set.

Query and gallery keep the order of ``name_query.txt`` / ``name_test.txt``: ``track2.txt`` rows
follow the query list and its entries are 1-based positions in the test list. Gallery records
carry the 0-based line of their track in ``test_track.txt`` as ``trackid``. The protocol is ``aic``: the
challenge's mAP@100 of the top-100 submission is the primary mAP (training validation), the full
Market-rule mAP is reported beside it (the ensemble's table has both columns).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from post_processing.submission import TOPK

from ..records import ImageRecord
from . import DatasetError, DatasetSplits, register
from .common import (Label, check_listed, parse_track_file, read_labels, read_name_list, require_dir,
                     require_file, require_records, require_root)


def _track_index(loader: str, path: str, names: List[str]) -> Tuple[List[List[str]], Dict[str, int]]:
    """Tracks of a track file and ``name → 0-based track line``; names must be in ``names``, once."""
    tracks = parse_track_file(path)
    known = set(names)
    index: Dict[str, int] = {}
    for line, track in enumerate(tracks):
        for name in track:
            if name not in known:
                raise DatasetError(f"{loader} loader: {path}: track {line + 1} lists {name}, "
                                   f"which is not in the image list")
            if name in index:
                raise DatasetError(f"{loader} loader: {path}: {name} is in tracks {index[name] + 1} "
                                   f"and {line + 1}")
            index[name] = line
    return tracks, index


def _train(loader: str, root: str, check_images: bool) -> List[ImageRecord]:
    """Labelled train records, in ``name_train.txt`` order when that file exists, else XML order."""
    labels = read_labels(loader, require_file(loader, root, "train_label.xml", "the training labels"))
    names_path = os.path.join(root, "name_train.txt")
    names = read_name_list(names_path) if os.path.isfile(names_path) else list(labels)
    for name in names:
        if name not in labels:
            raise DatasetError(f"{loader} loader: {names_path} lists {name}, which has no <Item> in "
                               f"{os.path.join(root, 'train_label.xml')}")
    track_path = os.path.join(root, "train_track.txt")
    track_of = _track_index(loader, track_path, names)[1] if os.path.isfile(track_path) else {}
    if check_images:
        folder = require_dir(loader, root, "image_train", "the training images")
        check_listed(loader, folder, names, "name_train.txt / train_label.xml")
    records = [ImageRecord(os.path.join(root, "image_train", n), labels[n].pid, labels[n].camid,
                           trackid=track_of.get(n, -1), attrs=dict(labels[n].attrs)) for n in names]
    return require_records(loader, records, f"{root} training labels")


def _test_labels(root: str) -> Tuple[Optional[Dict[str, Label]], Optional[Dict[str, Label]]]:
    """Query/test ground truth when both ``query_label.xml`` and ``test_label.xml`` exist."""
    paths = [os.path.join(root, f) for f in ("query_label.xml", "test_label.xml")]
    present = [os.path.isfile(p) for p in paths]
    if not any(present):
        return None, None
    if not all(present):
        have, lack = (paths[0], paths[1]) if present[0] else (paths[1], paths[0])
        raise DatasetError(f"aic20 loader: found {have} but missing {lack} (ground truth needs both)")
    return read_labels("aic20", paths[0]), read_labels("aic20", paths[1])


def _split(root: str, folder: str, names: List[str], labels: Optional[Dict[str, Label]],
           label_file: str, track_of: Dict[str, int]) -> List[ImageRecord]:
    records = []
    for name in names:
        pid, camid, attrs = -1, -1, {}
        if labels is not None:
            if name not in labels:
                raise DatasetError(f"aic20 loader: {os.path.join(root, label_file)} has no <Item> for {name}")
            pid, camid, attrs = labels[name]
        records.append(ImageRecord(os.path.join(root, folder, name), pid, camid,
                                   trackid=track_of.get(name, -1), attrs=dict(attrs)))
    return records


@register("aic20", "name_{query,test}.txt, image_{train,query,test}/, train_label.xml, test_track.txt "
                   "(+ query_label.xml/test_label.xml)",
          "AIC: mAP@100 of the top-100 submission; full Market-rule mAP beside it")
def load_aic20(root: str, require_images: bool = True, train: bool = True) -> DatasetSplits:
    """CityFlow-ReID at ``root`` (train on the VehicleX simulation ids too by naming ``aic20_sim`` as a
    second ``DATASETS.TRAIN`` entry).

    ``require_images=False`` reads only the lists (what the ensemble needs): image folders are not
    checked and a missing ``train_label.xml`` gives an empty train split. ``train=False`` leaves the
    train split empty without reading ``train_label.xml`` or ``image_train/`` (what a command that
    needs query and gallery only asks for, so a broken training set cannot stop it).
    ``extra``: ``tracks`` (gallery names per ``test_track.txt`` line; empty without that file),
    ``has_ground_truth`` (both ``query_label.xml`` and ``test_label.xml`` exist).
    """
    loader = "aic20"
    root = require_root(loader, root)
    query_names = read_name_list(require_file(loader, root, "name_query.txt", "the query image names"))
    test_names = read_name_list(require_file(loader, root, "name_test.txt", "the gallery image names"))
    require_records(loader, query_names, os.path.join(root, "name_query.txt"))
    require_records(loader, test_names, os.path.join(root, "name_test.txt"))
    train_records: List[ImageRecord] = []
    if train and (require_images or os.path.isfile(os.path.join(root, "train_label.xml"))):
        train_records = _train(loader, root, require_images)
    if require_images:
        check_listed(loader, require_dir(loader, root, "image_query", "the query images"),
                     query_names, "name_query.txt")
        check_listed(loader, require_dir(loader, root, "image_test", "the gallery images"),
                     test_names, "name_test.txt")

    track_path = os.path.join(root, "test_track.txt")
    tracks, track_of = _track_index(loader, track_path, test_names) if os.path.isfile(track_path) else ([], {})
    query_labels, test_labels = _test_labels(root)
    query = _split(root, "image_query", query_names, query_labels, "query_label.xml", {})
    gallery = _split(root, "image_test", test_names, test_labels, "test_label.xml", track_of)
    extra: Dict[str, object] = {"tracks": tracks, "has_ground_truth": query_labels is not None}
    return DatasetSplits(loader, root, train_records, query, gallery, extra, subsets=_flag_attributes(query),
                         protocol="aic", protocol_options={"topk": TOPK},
                         protocol_label=f"AIC20: the challenge's mAP@{TOPK} of the top-{TOPK} submission (training "
                                        f"validation's mAP), the full Market-rule mAP beside it")


def _flag_attributes(query: List[ImageRecord]) -> Tuple[str, ...]:
    """Query label attributes every query carries as 0 or 1 (the synthetic benchmark's ``foggy``): the
    dataset's declared subsets, scored on their own too."""
    if not query:
        return ()
    names = set(query[0].attrs)
    for r in query:
        names &= {k for k, v in r.attrs.items() if v in (0, 1) and not isinstance(v, float)}
    return tuple(sorted(names))


@register("aic20_sim", "image_train/ + train_label.xml (training only)", "none (training only)")
def load_aic20_sim(root: str) -> DatasetSplits:
    """The AIC20 VehicleX simulation set (``image_train/`` + ``train_label.xml``): train only; listed after
    ``aic20`` in ``DATASETS.TRAIN`` it adds its ids (disjoint from the real ones) to training."""
    loader = "aic20_sim"
    root = require_root(loader, root)
    return DatasetSplits(loader, root, train=_train(loader, root, check_images=True))
