"""What `ensemble` commands read: a dataset's query/gallery lists, ground truth and evaluation
protocol, and the models' features.

The dataset is any registered loader, named by a ``--dataset`` entry as in ``DATASETS.TEST``
(``aic20`` by default: its name lists, tracks and labels, read without the image folders); the
features of every model are aligned to the dataset's query/gallery order by image name, never by
position. The training labels are read only when the training features are asked for, so
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

from global_model.data.datasets import DatasetError, DatasetSplits, load_dataset_entry
from global_model.data.datasets.scoring import evaluation_cameras
from post_processing.features import (FeatureFileError, FeatureSet, align, check_same_model, find_feature_file,
                                      load_features)

from .pipeline import Labels

DATASET = "aic20"  # the default --dataset entry
SHOW = 10  # skipped image names listed in a message

logger = logging.getLogger("ensembles.inputs")


@dataclass
class Inputs:
    """Query/gallery (and optional train) features of several models, aligned to the dataset's order."""

    dataset: DatasetSplits
    labels: Labels
    feats: Dict[str, Dict[str, np.ndarray]]  # side ("query"/"gallery"/"train") -> model -> N×D
    notes: List[str] = field(default_factory=list)  # also logged as warnings: unchecked files, dropped images


def load_split_lists(data_root: Optional[str], train: bool = False, dataset: str = DATASET) -> DatasetSplits:
    """The dataset entry ``dataset`` (``name``, ``name=path``, ``name(key=value)=path``; a relative or
    missing path is taken inside ``data_root``); AIC20 is read from its lists without requiring the
    image folders, the training split only with ``train``."""
    try:
        return load_dataset_entry(dataset, data_root or "", train=train, require_images=False)
    except DatasetError as exc:
        if data_root or "=" in dataset:
            raise
        raise DatasetError(f"{exc}: give its folder as --dataset {dataset.split('(')[0]}=PATH or --data-root") from None


def _flags(ds: DatasetSplits) -> Dict[str, np.ndarray]:
    """Boolean query masks of the attributes the dataset declares as subsets (only those with a member)."""
    subsets = {}
    for name in ds.subsets:
        mask = np.asarray([bool(r.attrs.get(name)) for r in ds.query])
        if mask.any():
            subsets[name] = mask
    return subsets


def labels_of(ds: DatasetSplits) -> Labels:
    """Ground truth, cameras for the protocol (see :func:`evaluation_cameras`), tracks and subsets.

    ``vehicleid`` averages 10 draws of the whole test set, which a query×gallery ranking cannot
    hold: the ensemble scores the loaded draw (``repeat``) with the Market rules and says so."""
    def ints(values):
        return np.asarray(list(values), dtype=np.int64)

    q_cams, g_cams, _ = evaluation_cameras(ds.query, ds.gallery)
    known = bool(ds.query) and all(r.pid >= 0 for r in ds.query)
    protocol, options = ds.protocol, dict(ds.protocol_options)
    if protocol == "vehicleid":
        protocol, options = "market", {}
    return Labels(q_pids=ints(r.pid for r in ds.query), g_pids=ints(r.pid for r in ds.gallery),
                  q_camids=q_cams, g_camids=g_cams, g_tracks=ints(r.trackid for r in ds.gallery),
                  has_gt=bool(ds.extra.get("has_ground_truth", known)),
                  train_pids=ints(r.pid for r in ds.train) if ds.train else None, query_subsets=_flags(ds),
                  protocol=protocol, protocol_options=options)


def dataset_notes(ds: DatasetSplits) -> List[str]:
    """What a run on ``ds`` reports about its evaluation (published counts, no cameras, VehicleID draws)."""
    notes = list(ds.notes)
    note = evaluation_cameras(ds.query, ds.gallery)[2]
    if note:
        notes.append(note)
    if ds.protocol == "vehicleid":
        notes.append("vehicleid: the ensemble scores the loaded query/gallery draw with the Market rules; the "
                     "protocol's mean over the 10 draws is what training validation reports")
    return notes


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


def load_inputs(features_dir: str, data_root: Optional[str], models: Sequence[str], train: bool = False,
                dataset: Optional[DatasetSplits] = None, spec: str = DATASET) -> Inputs:
    """Features of ``models`` aligned to the dataset ``spec`` (see :func:`load_split_lists`; or the
    already loaded ``dataset``), train too when ``train``.

    Refuses a model whose files have different fingerprints; files without one are noted."""
    ds = dataset if dataset is not None else load_split_lists(data_root, train=train, dataset=spec)
    sides = {"query": [r.name for r in ds.query], "gallery": [r.name for r in ds.gallery]}
    loaded: Dict[str, Dict[str, FeatureSet]] = {
        side: {m: load_features(find_feature_file(features_dir, m, side)) for m in models} for side in sides}
    if train:
        if not ds.train:
            raise FeatureFileError(f"{ds.root}: metric learning needs the dataset's training split (AIC20: "
                                   f"train_label.xml)")
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
    lists = {"query": "name_query.txt", "gallery": "name_test.txt", "train": "train_label.xml"}
    sources = {side: os.path.join(ds.root, lists[side]) if ds.name == "aic20" else f"the {side} split of {ds.root}"
               for side in sides}
    feats = {side: align(loaded[side], order=names, source=sources[side])[1] for side, names in sides.items()}
    for note in notes:
        logger.warning("%s", note)
    return Inputs(ds, labels_of(ds), feats, notes)
