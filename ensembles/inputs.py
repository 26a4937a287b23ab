"""What `ensemble` commands read: the AIC20 name lists / tracks / ground truth and the models' features.

Name lists, tracks and labels come from the one AIC20 parser (``load_dataset("aic20", ...)``); the
features of every model are aligned to ``name_query.txt`` / ``name_test.txt`` order by image name,
never by position. The training labels are read only when the training features are asked for, so
a broken training set cannot stop a command that does not use it. A model's query, gallery and
train files must carry the same fingerprint (one checkpoint and config); images that extraction
skipped as unreadable are refused for query/gallery (a submission ranks them all) and left out of
the training set.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence

import numpy as np

from global_model.data.datasets import DatasetError, DatasetSplits, load_dataset
from global_model.data.datasets.validation import split_view
from post_processing.features import (FeatureFileError, FeatureSet, align, check_same_model, find_feature_file,
                                      load_features)

from .pipeline import Labels

DATASET = "aic20"
SHOW = 10  # skipped image names listed in a message

logger = logging.getLogger("ensembles.inputs")


@dataclass
class Inputs:
    """Query/gallery (and optional train) features of several models, aligned to the dataset's order."""

    dataset: DatasetSplits
    labels: Labels
    feats: Dict[str, Dict[str, np.ndarray]]  # side ("query"/"gallery"/"train") -> model -> N×D
    notes: List[str] = field(default_factory=list)  # also logged as warnings: unchecked files, dropped images


def load_split_lists(data_root: str, train: bool = False, split: str = "test", val_ids=None,
                     val_seed: int = 0) -> DatasetSplits:
    """AIC20 lists, tracks and (when present) labels, without requiring the image folders; the
    training labels only with ``train``. ``split="val"``: the query/gallery of the validation split
    ``val_ids``/``val_seed`` hold out of the training identities. Given ``val_ids``, train (metric
    learning) is the training identities minus those, for either split, as the models were trained."""
    if split == "val" and val_ids is None:
        raise DatasetError("--split val needs --val-ids (the identities held out of training, as the models "
                           "were trained with)")
    held = {"val_ids": val_ids, "val_seed": val_seed} if val_ids is not None else {}
    full = load_dataset(DATASET, data_root, require_images=False, train=train or split == "val", **held)
    return replace(split_view(full, split), train=full.train if train else [])


SUBSET_ATTR = "foggy"  # query_label.xml attribute (0/1): those queries are also scored on their own


def labels_of(ds: DatasetSplits) -> Labels:
    def ints(values):
        return np.asarray(list(values), dtype=np.int64)

    subsets = {}
    if ds.query and all(SUBSET_ATTR in r.attrs for r in ds.query):  # the synthetic benchmark marks fog
        foggy = np.asarray([bool(r.attrs[SUBSET_ATTR]) for r in ds.query])
        if foggy.any():
            subsets[SUBSET_ATTR] = foggy
    return Labels(q_pids=ints(r.pid for r in ds.query), g_pids=ints(r.pid for r in ds.gallery),
                  q_camids=ints(r.camid for r in ds.query), g_camids=ints(r.camid for r in ds.gallery),
                  g_tracks=ints(r.trackid for r in ds.gallery), has_gt=bool(ds.extra.get("has_ground_truth")),
                  train_pids=ints(r.pid for r in ds.train) if ds.train else None, query_subsets=subsets)


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:SHOW]) + (f" ... ({len(names)} in all)" if len(names) > SHOW else "")


def _refuse_skipped(side: str, sets: Dict[str, FeatureSet], wanted: Sequence[str]) -> None:
    """A submission ranks every query and gallery image: name the images extraction skipped."""
    listed = set(wanted)
    for fs in sets.values():
        skipped = [n for n in fs.skipped if n in listed]
        if skipped:
            raise FeatureFileError(
                f"{fs.path}: extraction skipped {len(skipped)} unreadable {side} image(s) (DATASETS.SKIP_BAD): "
                f"{_shown(skipped)}; a submission needs every {side} image: repair or replace them and extract again")


def _drop_skipped_train(ds: DatasetSplits, sets: Dict[str, FeatureSet], notes: List[str]) -> DatasetSplits:
    """Training images any model's extraction skipped are left out of metric learning (noted)."""
    skipped = {n for fs in sets.values() for n in fs.skipped}
    dropped = [r.name for r in ds.train if r.name in skipped]
    if not dropped:
        return ds
    notes.append(f"train: left {len(dropped)} image(s) out of metric learning that extraction skipped as "
                 f"unreadable (DATASETS.SKIP_BAD): {_shown(dropped)}")
    for model, fs in sets.items():
        keep = [i for i, n in enumerate(fs.names) if n not in skipped]
        sets[model] = replace(fs, names=[fs.names[i] for i in keep], feats=fs.feats[keep])
    return replace(ds, train=[r for r in ds.train if r.name not in skipped])


def load_inputs(features_dir: str, data_root: str, models: Sequence[str], train: bool = False,
                dataset: Optional[DatasetSplits] = None, split: str = "test", val_ids=None,
                val_seed: int = 0) -> Inputs:
    """Features of ``models`` aligned to the AIC20 lists at ``data_root`` (train too when ``train``).

    ``split="val"`` reads ``val_query_<m>``/``val_gallery_<m>`` and never a test feature file.
    Refuses a model whose files have different fingerprints; files without one are noted."""
    ds = dataset if dataset is not None else load_split_lists(data_root, train, split, val_ids, val_seed)
    sides = {"query": [r.name for r in ds.query], "gallery": [r.name for r in ds.gallery]}
    prefix = "val_" if split == "val" else ""
    loaded: Dict[str, Dict[str, FeatureSet]] = {
        side: {m: load_features(find_feature_file(features_dir, m, prefix + side)) for m in models}
        for side in sides}
    if train:
        if not ds.train:
            raise FeatureFileError(f"{data_root}: metric learning needs training labels (train_label.xml)")
        try:
            loaded["train"] = {m: load_features(find_feature_file(features_dir, m, "train")) for m in models}
        except FeatureFileError as exc:
            raise FeatureFileError(f"{exc} (metric learning needs the training features of every fused model)") from None
    notes: List[str] = []
    for m in models:
        notes += check_same_model(m, {side: sets[m] for side, sets in loaded.items()})
    for side, names in sides.items():
        _refuse_skipped(side, loaded[side], names)
    if train:
        ds = _drop_skipped_train(ds, loaded["train"], notes)
        sides["train"] = [r.name for r in ds.train]
    lists = ({"query": "name_query.txt", "gallery": "name_test.txt", "train": "train_label.xml"} if split == "test"
             else {side: "train_label.xml (validation split)" for side in sides})
    feats = {side: align(loaded[side], order=names, source=os.path.join(data_root, lists[side]))[1]
             for side, names in sides.items()}
    for note in notes:
        logger.warning("%s", note)
    return Inputs(ds, labels_of(ds), feats, notes)
