"""What `ensemble` commands read: the AIC20 name lists / tracks / ground truth and the models' features.

Name lists, tracks and labels come from the one AIC20 parser (``load_dataset("aic20", ...)``); the
features of every model are aligned to ``name_query.txt`` / ``name_test.txt`` order by image name,
never by position.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from global_model.data.datasets import DatasetSplits, load_dataset
from post_processing.features import FeatureFileError, align, find_feature_file, load_features

from .pipeline import Labels

DATASET = "aic20"


@dataclass
class Inputs:
    """Query/gallery (and optional train) features of several models, aligned to the dataset's order."""

    dataset: DatasetSplits
    labels: Labels
    feats: Dict[str, Dict[str, np.ndarray]]  # side ("query"/"gallery"/"train") -> model -> N×D


def load_split_lists(data_root: str) -> DatasetSplits:
    """AIC20 lists, tracks and (when present) labels, without requiring the image folders."""
    return load_dataset(DATASET, data_root, require_images=False)


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


def load_inputs(features_dir: str, data_root: str, models: Sequence[str], train: bool = False,
                dataset: Optional[DatasetSplits] = None) -> Inputs:
    """Features of ``models`` aligned to the AIC20 lists at ``data_root`` (train too when ``train``)."""
    ds = dataset if dataset is not None else load_split_lists(data_root)
    order = {"query": [r.name for r in ds.query], "gallery": [r.name for r in ds.gallery]}
    feats: Dict[str, Dict[str, np.ndarray]] = {}
    for side, names in order.items():
        sets = {m: load_features(find_feature_file(features_dir, m, side)) for m in models}
        feats[side] = align(sets, order=names)[1]
    if train:
        if not ds.train:
            raise FeatureFileError(f"{data_root}: metric learning needs training labels (train_label.xml)")
        try:
            sets = {m: load_features(find_feature_file(features_dir, m, "train")) for m in models}
        except FeatureFileError as exc:
            raise FeatureFileError(f"{exc} (metric learning needs the training features of every fused model)") from None
        feats["train"] = align(sets, order=[r.name for r in ds.train])[1]
    return Inputs(ds, labels_of(ds), feats)
