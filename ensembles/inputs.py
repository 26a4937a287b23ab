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

A dataset whose protocol draws its own query/gallery splits from the whole test set
(:func:`post_processing.protocols.is_whole_test_set`: VehicleID) is post-processed once on all test
images: the pipeline's query side and gallery side are both the N test images (the loaded draw's query
then gallery, features from either file), every stage is scored over the protocol's draws from the
N×N distances (:meth:`Inputs.scored`), and the written ranking is the loaded draw's queries ranked
within its gallery (:meth:`Inputs.written_ranking`, :func:`ranking_scope`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence

import numpy as np

from global_model.data.datasets import DatasetError, DatasetSplits, load_dataset_entry
from global_model.data.datasets.scoring import evaluation_cameras
from global_model.data.datasets.validation import split_view
from post_processing.distance import topk_smallest
from post_processing.features import (FeatureFileError, FeatureSet, align, check_same_model, find_feature_file,
                                      load_features)
from post_processing.protocols import is_whole_test_set

from .pipeline import Labels, PipelineError, State

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

    @property
    def whole_test_set(self) -> bool:
        """The pipeline runs on all test images against themselves (VehicleID; see the module doc)."""
        return is_whole_test_set(self.labels.protocol)

    @property
    def file_labels(self) -> Labels:
        """Ground truth of the written ranking's rows and columns: the labels ``ensemble evaluate`` scores the
        ranking file with (the loaded draw's for VehicleID, else :attr:`labels`)."""
        return labels_of(self.dataset) if self.whole_test_set else self.labels

    def protocol_notes(self) -> List[str]:
        """What a fuse/tune run on these inputs says about how it scored (whole-test-set protocols)."""
        if not self.whole_test_set:
            return []
        n = len(self.labels.q_pids)
        return [f"{self.dataset.name}: post-processing ran once on all {n} test images (each both a query and a "
                f"gallery image); every score is the mean over the protocol's "
                f"{self.labels.protocol_options.get('repeats', '?')} draws, each draw's queries ranked within its "
                f"own gallery (one image per id) by the final {n}x{n} distances (`draws` in the metrics JSON)",
                f"the ranking file holds {ranking_scope(self.dataset)}"]

    def scored(self, state: State, topk: int) -> np.ndarray:
        """What :func:`ensembles.report.score` reads of a stage: its top-``topk`` ranking, or the N×N
        distances of the whole test set for a protocol that draws its own splits."""
        if not self.whole_test_set:
            return state.rank(topk)
        if state.ranking is not None:
            raise PipelineError(
                f"{self.dataset.name}: its protocol ranks each draw within the distances of all {state.num_query} "
                f"test images, but the pipeline left only a top-K ranking (re-ranking of {state.num_query}+"
                f"{state.num_gallery} images above --dense-rerank-max {state.dense_rerank_max}, or a ranking step): "
                f"give --dense-rerank-max {state.num_query + state.num_gallery} or leave the step out")
        return state.distances()

    def written_ranking(self, state: State, topk: int) -> np.ndarray:
        """The ranking ``--out`` holds: the stage's top-``topk``; for a whole-test-set protocol the loaded
        draw's queries (the first rows) ranked within its gallery (the last columns), gallery indices of
        that draw."""
        if not self.whole_test_set:
            return state.rank(topk)
        nq = len(self.dataset.query)
        return topk_smallest(self.scored(state, topk)[:nq, nq:], topk)


def load_split_lists(data_root: Optional[str], train: bool = False, dataset: str = DATASET, split: str = "test",
                     val_ids=None, val_seed: int = 0) -> DatasetSplits:
    """The dataset entry ``dataset`` (``name``, ``name=path``, ``name(key=value)=path``; a relative or
    missing path is taken inside ``data_root``); AIC20 is read from its lists without requiring the
    image folders, the training split only with ``train``. ``split="val"``: the query/gallery of the
    validation split ``val_ids``/``val_seed`` hold out of the training identities. Given ``val_ids``,
    train (metric learning) is the training identities minus those, for either split, as the models
    were trained."""
    if split == "val" and val_ids is None:
        raise DatasetError("--split val needs --val-ids (the identities held out of training, as the models "
                           "were trained with)")
    held = {"val_ids": val_ids, "val_seed": val_seed} if val_ids is not None else {}
    try:
        full = load_dataset_entry(dataset, data_root or "", train=train or split == "val", require_images=False,
                                  **held)
    except DatasetError as exc:
        if data_root or "=" in dataset:
            raise
        raise DatasetError(f"{exc}: give its folder as --dataset {dataset.split('(')[0]}=PATH or --data-root") from None
    return replace(split_view(full, split), train=full.train if train else [])


def _flags(ds: DatasetSplits) -> Dict[str, np.ndarray]:
    """Boolean query masks of the attributes the dataset declares as subsets (only those with a member)."""
    subsets = {}
    for name in ds.subsets:
        mask = np.asarray([bool(r.attrs.get(name)) for r in ds.query])
        if mask.any():
            subsets[name] = mask
    return subsets


def _ints(values) -> np.ndarray:
    """Labels as an int64 array."""
    return np.asarray(list(values), dtype=np.int64)


def labels_of(ds: DatasetSplits) -> Labels:
    """Ground truth of the loaded query × gallery, cameras for the protocol (see
    :func:`evaluation_cameras`), tracks and subsets: what a ranking file of ``ds`` is scored with.

    A ranking scores under the Market rules for ``aic`` (its mAP@100 is the table's own column) and for
    a whole-test-set protocol (one draw's ranking: :func:`ranking_scope`)."""
    q_cams, g_cams, _ = evaluation_cameras(ds.query, ds.gallery)
    known = bool(ds.query) and all(r.pid >= 0 for r in ds.query)
    protocol, options = ds.protocol, dict(ds.protocol_options)
    if protocol == "aic" or is_whole_test_set(protocol):
        protocol, options = "market", {}
    return Labels(q_pids=_ints(r.pid for r in ds.query), g_pids=_ints(r.pid for r in ds.gallery),
                  q_camids=q_cams, g_camids=g_cams, g_tracks=_ints(r.trackid for r in ds.gallery),
                  has_gt=bool(ds.extra.get("has_ground_truth", known)),
                  train_pids=_ints(r.pid for r in ds.train) if ds.train else None, query_subsets=_flags(ds),
                  protocol=protocol, protocol_options=options)


def whole_test_labels(ds: DatasetSplits) -> Labels:
    """Labels of the pipeline for a whole-test-set protocol: query and gallery are both the loaded query
    then gallery (all test images, no cameras); the protocol gets the image names, which fix its draws."""
    records = list(ds.query) + list(ds.gallery)
    pids, none = _ints(r.pid for r in records), np.full(len(records), -1, np.int64)
    return Labels(q_pids=pids, g_pids=pids, q_camids=none, g_camids=none, g_tracks=none,
                  has_gt=bool(records) and all(r.pid >= 0 for r in records),
                  train_pids=_ints(r.pid for r in ds.train) if ds.train else None, protocol=ds.protocol,
                  protocol_options={**ds.protocol_options, "names": [r.name for r in records]})


def ranking_scope(ds: DatasetSplits) -> Optional[str]:
    """What a ranking file of ``ds`` ranks when that is not the protocol's whole evaluation (VehicleID:
    one draw of its test list), else None."""
    if not is_whole_test_set(ds.protocol):
        return None
    draw = ", ".join(f"{k}={v}" for k, v in sorted(ds.extra.get("draw", {}).items())) or "the loaded draw"
    return (f"{ds.name} {draw}: its {len(ds.query)} queries ranked within its {len(ds.gallery)} gallery images, "
            f"scored with the Market rules (nothing is junk); the protocol's score is the mean over "
            f"{ds.protocol_options.get('repeats', '?')} draws, which needs the distances of all "
            f"{len(ds.query) + len(ds.gallery)} test images (ensemble fuse --metrics-out)")


def dataset_notes(ds: DatasetSplits) -> List[str]:
    """What a run on ``ds`` reports about its evaluation (published counts, no cameras)."""
    notes = list(ds.notes)
    note = evaluation_cameras(ds.query, ds.gallery)[2]
    if note:
        notes.append(note)
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
                dataset: Optional[DatasetSplits] = None, spec: str = DATASET, split: str = "test", val_ids=None,
                val_seed: int = 0) -> Inputs:
    """Features of ``models`` aligned to the dataset ``spec`` (see :func:`load_split_lists`; or the
    already loaded ``dataset``), train too when ``train``.

    ``split="val"`` reads ``val_query_<m>``/``val_gallery_<m>`` and never a test feature file.
    Refuses a model whose files have different fingerprints; files without one are noted."""
    ds = dataset if dataset is not None else load_split_lists(data_root, train, spec, split, val_ids, val_seed)
    whole = is_whole_test_set(ds.protocol)
    sides = {"query": [r.name for r in ds.query], "gallery": [r.name for r in ds.gallery]}
    prefix = "val_" if split == "val" else ""
    loaded: Dict[str, Dict[str, FeatureSet]] = {
        side: {m: load_features(find_feature_file(features_dir, m, prefix + side)) for m in models}
        for side in sides}
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
        _refuse_skipped(side, loaded[side], sides["query"] + sides["gallery"] if whole else names)
    if whole:  # all test images on both sides, from whichever file (draw) extract wrote them to
        merged = {m: replace(fs, names=list(fs.names) + list(loaded["gallery"][m].names),
                             feats=np.concatenate([fs.feats, loaded["gallery"][m].feats]))
                  for m, fs in loaded["query"].items()}
        loaded["query"] = loaded["gallery"] = merged
        sides["query"] = sides["gallery"] = sides["query"] + sides["gallery"]
    if train:
        ds = _drop_skipped_train(ds, loaded["train"], notes)
        sides["train"] = [r.name for r in ds.train]
    lists = {"query": "name_query.txt", "gallery": "name_test.txt", "train": "train_label.xml"}
    sources = {side: os.path.join(ds.root, lists[side]) if ds.name == "aic20" else f"the {side} split of {ds.root}"
               for side in sides}
    if split == "val":
        sources = {side: f"the validation {side} of {ds.root} (training images)" for side in sides}
    feats = {side: align(loaded[side], order=names, source=sources[side])[1] for side, names in sides.items()}
    for note in notes:
        logger.warning("%s", note)
    return Inputs(ds, whole_test_labels(ds) if whole else labels_of(ds), feats, notes)
