"""`ensemble search`: the top-k gallery matches of every query image, for folders of images or feature files.

Each side (query, gallery) is either a folder of images, searched recursively and embedded with a
checkpoint (:class:`global_model.api.FeatureExtractor`, torch imported only then), or a precomputed
feature file whose names are found in a dataset (``data_root``: paths and identities) or a folder.
Identities are known from the dataset's ground truth or, with ``folder_ids``, from the first folder
under the root (``Q/<id>/img.jpg``); unknown ones are ``None``.

Ranking is by distance (cosine by default) or by k-reciprocal re-ranking straight from the features
(:func:`post_processing.rerank.re_ranking_features`, any gallery size). Outputs: ``result.csv`` (one
row per query and rank: ``query_filename, predicted_id, predicted_path, distance, rank``; id -1 when
unknown) and ``results.json`` (:func:`results_document`: top-k per query with paths, ids, distances,
each query's AP, top-1 accuracy and mAP when the query ids are known). Both scores ignore cameras: a
gallery image of the query's identity is a match wherever it was taken.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from global_model.data.records import ImageRecord
from post_processing.distance import pairwise_distance, topk_smallest
from post_processing.errors import ReidError, ReidUsageError
from post_processing.evaluation import average_precisions
from post_processing.fileio import IMAGE_EXTENSIONS, atomic_write, iter_images
from post_processing.knn import build_index, parse_knn

from .inputs import DATASET, load_split_lists

CSV_COLUMNS = ("query_filename", "predicted_id", "predicted_path", "distance", "rank")
RESULTS_FORMAT = "reid-ensemble search results"
RESULTS_VERSION = 1


class SearchError(ReidError, ValueError):
    """A folder without images, or features that do not match their dataset, folder or each other."""


class SearchUsageError(SearchError, ReidUsageError):
    """A side given twice or not at all, or identities asked for where the layout has none."""


@dataclass
class Side:
    """The query or gallery side of a search: ``names[i]`` (relative path or feature name) is the image at
    ``paths[i]`` with identity ``ids[i]`` (None when unknown); ``feats`` is N×D once extracted or loaded."""

    names: List[str]
    paths: List[str]
    ids: List[Optional[Any]]
    source: str
    feats: Optional[np.ndarray] = None
    index: Optional[Any] = None  # a GalleryIndex (ensembles.index) searched instead of feats

    @property
    def has_ids(self) -> bool:
        return any(i is not None for i in self.ids)

    @property
    def ready(self) -> bool:
        """Features loaded or extracted, or an index to search."""
        return self.feats is not None or self.index is not None


def image_files(folder: str) -> List[str]:
    """Image files under ``folder`` at any depth, as sorted relative paths (``/``-separated)."""
    if not os.path.isdir(folder):
        raise SearchError(f"folder {folder} does not exist")
    found = [p.replace(os.sep, "/") for p in iter_images(folder)]
    if not found:
        raise SearchError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) in it or its subfolders")
    return sorted(found)


def _folder_id(name: str, folder: str) -> str:
    head, sep, _ = name.partition("/")
    if not sep:
        raise SearchUsageError(f"{os.path.join(folder, name)}: with folder identities every image must sit in a "
                               f"subfolder named after its identity ({folder}/<id>/{name})")
    return head


def folder_side(folder: str, folder_ids: bool = False) -> Side:
    """Every image under ``folder``, identities from the first subfolder with ``folder_ids``."""
    names = image_files(folder)
    ids = [_folder_id(n, folder) for n in names] if folder_ids else [None] * len(names)
    return Side(names, [os.path.join(folder, n) for n in names], ids, folder)


def _dataset_side(names: Sequence[str], source: str, data_root: Optional[str], split: str,
                  dataset: str = DATASET) -> Tuple[List[str], List[Any]]:
    """Paths and identities (None without ground truth) of ``names`` in the ``split`` of the dataset entry
    ``dataset`` (a ``--dataset`` SPEC; AIC20 at ``data_root`` by default)."""
    ds = load_split_lists(data_root, dataset=dataset)
    records: List[ImageRecord] = ds.query if split == "query" else ds.gallery
    by_name = {r.name: r for r in records}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise SearchError(f"{source}: {len(missing)} {split} name(s) not in {ds.root}'s {split} list, "
                          f"first: {', '.join(missing[:5])}")
    known = bool(ds.extra.get("has_ground_truth", True))
    return ([by_name[n].path for n in names],
            [by_name[n].pid if known and by_name[n].pid >= 0 else None for n in names])


def feature_side(path: str, split: str, data_root: Optional[str] = None, folder: Optional[str] = None,
                 folder_ids: bool = False, dataset: Optional[str] = None) -> Side:
    """A precomputed feature file as one side: image paths and identities from the ``split`` of the dataset
    entry ``dataset`` (AIC20 at ``data_root`` by default), else ``folder/<name>`` (identities from the
    first folder with ``folder_ids``), else the names."""
    from post_processing.features import load_features

    fs = load_features(path)
    return _named_side([str(n) for n in fs.names], path, split, data_root, folder, folder_ids, dataset, fs.feats)


def index_side(path: str, data_root: Optional[str] = None, folder: Optional[str] = None,
               folder_ids: bool = False, dataset: Optional[str] = None) -> Side:
    """The gallery of a saved index (``ensemble index build``), its images found as :func:`feature_side` finds them."""
    from .index import load_gallery_index

    index = load_gallery_index(path)
    side = _named_side([str(n) for n in index.names], path, "gallery", data_root, folder, folder_ids, dataset)
    side.index = index
    return side


def _named_side(names: List[str], path: str, split: str, data_root: Optional[str], folder: Optional[str],
                folder_ids: bool, dataset: Optional[str], feats: Optional[np.ndarray] = None) -> Side:
    if data_root or dataset:
        paths, ids = _dataset_side(names, path, data_root, split, dataset or DATASET)
    else:
        paths = [os.path.join(folder or "", n) for n in names]
        ids = [_folder_id(n, folder or os.path.dirname(path)) for n in names] if folder_ids else [None] * len(names)
    return Side(names, paths, ids, path, feats)


def extract(sides: Sequence[Side], checkpoint: str, config: Optional[str] = None, opts: Sequence[str] = (),
            progress: bool = False) -> None:
    """Fills ``feats`` of every side without features, one model load for all (imports torch)."""
    from global_model.api import FeatureExtractor

    todo = [s for s in sides if not s.ready]
    if todo:
        extractor = FeatureExtractor(checkpoint, config, opts, progress=progress)
        for side in todo:
            side.feats = extractor(side.paths)


def search(qf: np.ndarray, gf: np.ndarray, topk: int = 10, metric: str = "cosine",
           query_source: str = "the query features", gallery_source: str = "the gallery features",
           rerank: Optional[Mapping[str, Any]] = None, knn: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(indices, distances)``, each Q×min(topk, G): the closest gallery rows per query, best first.

    ``rerank`` (``k1``, ``k2``, ``lambda``) re-ranks with k-reciprocal neighbours; the distances are
    then the re-ranked ones. Otherwise ``knn`` (a ``--knn`` spec, see :mod:`post_processing.knn`) other
    than None/exact searches with that backend. ``query_source``/``gallery_source`` name where the
    features came from (files, folder) in errors."""
    if qf.ndim != 2 or gf.ndim != 2 or qf.shape[1] != gf.shape[1]:
        raise SearchError(f"{query_source} ({'×'.join(map(str, qf.shape))}) and {gallery_source} "
                          f"({'×'.join(map(str, gf.shape))}) have different feature dimensions: they must come "
                          f"from the same model")
    if rerank is not None:
        from post_processing.rerank import re_ranking_features

        idx, dist = re_ranking_features(qf, gf, rerank["k1"], rerank["k2"], rerank["lambda"], topk=topk,
                                        metric=metric)
        return np.asarray(idx, np.int64), np.asarray(dist, np.float32)
    if knn is not None and parse_knn(knn).name != "exact":
        return _full_hits(*build_index(knn, gf, metric).search(qf, topk), f"--knn {knn}")
    dist = pairwise_distance(qf, gf, metric)
    idx = topk_smallest(dist, topk)
    return idx, np.take_along_axis(dist, idx, axis=1)


def search_index(qf: np.ndarray, index, topk: int, source: str) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`search` against a saved gallery index (``ensembles.index.GalleryIndex`` from ``source``)."""
    return _full_hits(*index.search(qf, topk), source)


def _full_hits(idx: np.ndarray, dist: np.ndarray, source: str) -> Tuple[np.ndarray, np.ndarray]:
    """An approximate backend may find fewer than top-k hits (id -1); a result row must not point at
    a gallery image it did not find, so that is an error naming the backend."""
    short = np.flatnonzero((idx < 0).any(axis=1))
    if short.size:
        raise SearchError(f"{source}: {short.size} quer{'y' if short.size == 1 else 'ies'} got fewer than "
                          f"{idx.shape[1]} gallery hits (first: query row {int(short[0])}); search more cells "
                          f"(nprobe / ef_search) or lower --topk")
    return idx, dist


def query_scores(query: Side, gallery: Side, idx: np.ndarray) -> Optional[Dict[str, Any]]:
    """With query identities: ``ap`` per query (NaN where its id is unknown or absent from the gallery;
    matches beyond the top-k count as missed), ``top1`` (per query: 1/0, NaN unknown), and the summary
    ``top1_accuracy`` (over queries with a known id), ``mAP`` (over queries with a match) and ``counted``.
    None without query identities."""
    known = np.asarray([i is not None for i in query.ids])
    if not known.any():
        return None
    q_ids = np.asarray([str(i) for i in query.ids])
    g_ids = np.asarray(["\0unknown" if i is None else str(i) for i in gallery.ids])
    ap = np.full(len(query.ids), np.nan)
    rows = np.flatnonzero(known)
    ap[rows] = average_precisions(idx[rows], q_ids[rows], g_ids, np.full(len(rows), -1), np.full(len(g_ids), -2))
    top1 = np.where(known, (g_ids[idx[:, 0]] == q_ids).astype(float), np.nan)
    valid = ~np.isnan(ap)
    return {"ap": ap, "top1": top1, "top1_accuracy": float(np.nanmean(top1)), "counted": int(known.sum()),
            "mAP": float(ap[valid].mean()) if valid.any() else None}


def result_rows(query_names: Sequence[str], idx: np.ndarray, dist: np.ndarray,
                gallery: Side) -> List[Dict[str, object]]:
    """The ``result.csv`` rows: one per query and rank."""
    return [{"query_filename": qn, "predicted_id": -1 if gallery.ids[g] is None else gallery.ids[g],
             "predicted_path": gallery.paths[g], "distance": f"{d:.6f}", "rank": r}
            for qn, row, drow in zip(query_names, idx, dist) for r, (g, d) in enumerate(zip(row, drow), 1)]


def write_result_csv(path: str, rows: Sequence[Dict[str, object]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())


def _number(x: float) -> Optional[float]:
    return None if x is None or np.isnan(x) else round(float(x), 6)


def results_document(query: Side, gallery: Side, idx: np.ndarray, dist: np.ndarray,
                     scores: Optional[Mapping[str, Any]], settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``results.json`` document: ``settings`` (distance, re-ranking, top-k, checkpoint ...), the two
    sources, the summary scores, and per query its name, path, id, AP and ranked ``matches``."""
    ap = scores["ap"] if scores else np.full(len(query.names), np.nan)
    return {
        "format": RESULTS_FORMAT, "version": RESULTS_VERSION, **settings,
        "query": {"source": query.source, "count": len(query.names)},
        "gallery": {"source": gallery.source, "count": len(gallery.names)},
        "top1_accuracy": scores["top1_accuracy"] if scores else None,
        "mAP": scores["mAP"] if scores else None,
        "queries_with_ids": scores["counted"] if scores else 0,
        "queries": [{"name": query.names[q], "path": query.paths[q], "id": query.ids[q], "ap": _number(ap[q]),
                     "matches": [{"rank": r, "name": gallery.names[g], "path": gallery.paths[g], "id": gallery.ids[g],
                                  "distance": round(float(d), 6)}
                                 for r, (g, d) in enumerate(zip(idx[q], dist[q]), 1)]}
                    for q in range(len(query.names))],
    }


def write_results_json(path: str, document: Mapping[str, Any]) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)
        f.write("\n")
