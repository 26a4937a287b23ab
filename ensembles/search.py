"""`ensemble search`: top-k gallery matches for a folder of query images, written as ``result.csv``.

Query features come from a checkpoint (extracted here; torch is imported only then) or from a
precomputed feature file. Rows: ``query_filename, predicted_id, predicted_path, distance, rank``;
``predicted_id`` is the gallery image's identity (-1 when the dataset has no labels for it).
"""
from __future__ import annotations

import csv
import io
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from global_model.data.datasets.common import list_images
from global_model.data.records import ImageRecord
from post_processing.distance import pairwise_distance, topk_smallest
from post_processing.errors import ReidError
from post_processing.fileio import IMAGE_EXTENSIONS, atomic_write
from post_processing.knn import build_index, parse_knn

from .inputs import load_split_lists

CSV_COLUMNS = ("query_filename", "predicted_id", "predicted_path", "distance", "rank")


class SearchError(ReidError, ValueError):
    """A query folder without images, or gallery features that do not match the dataset."""


def query_image_paths(folder: str) -> List[str]:
    """Image files directly in ``folder``, sorted by name."""
    if not os.path.isdir(folder):
        raise SearchError(f"query folder {folder} does not exist")
    paths = [os.path.join(folder, n) for n in list_images(folder)]
    if not paths:
        raise SearchError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return paths


def gallery_records(names: Sequence[str], source: str, data_root: Optional[str] = None,
                    gallery_dir: Optional[str] = None) -> List[ImageRecord]:
    """A record (path, identity) per gallery feature name of ``source``: from the AIC20 dataset at
    ``data_root``, else ``gallery_dir/<name>`` with unknown identity (-1)."""
    if not data_root:
        return [ImageRecord(os.path.join(gallery_dir or "", n), -1, -1) for n in names]
    by_name = {r.name: r for r in load_split_lists(data_root).gallery}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise SearchError(f"{source}: {len(missing)} gallery name(s) not in {data_root}'s gallery list, "
                          f"first: {', '.join(missing[:5])}")
    return [by_name[n] for n in names]


def extract_query_features(paths: Sequence[str], checkpoint: str, config: Optional[str] = None,
                           opts: Sequence[str] = ()) -> Tuple[List[str], np.ndarray]:
    """``(names, feats)`` of the images at ``paths`` with the model in ``checkpoint`` (imports torch)."""
    from global_model.config import load_config
    from global_model.engine.extractor import extract_features, load_model_from_checkpoint

    cfg = load_config(config, list(opts)) if config else None
    model, cfg = load_model_from_checkpoint(checkpoint, cfg, list(opts))
    return extract_features(model, [ImageRecord(p, -1, -1) for p in paths], cfg, progress=False)


def search(qf: np.ndarray, gf: np.ndarray, topk: int = 10, metric: str = "cosine",
           query_source: str = "the query features", gallery_source: str = "the gallery features",
           knn: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(indices, distances)``, each Q×min(topk, G): the closest gallery rows per query, best first.

    ``query_source``/``gallery_source`` name where the features came from (files, folder) in errors;
    ``knn`` (a ``--knn`` spec, see :mod:`post_processing.knn`) other than None/exact searches with that backend."""
    if qf.ndim != 2 or gf.ndim != 2 or qf.shape[1] != gf.shape[1]:
        raise SearchError(f"{query_source} ({'×'.join(map(str, qf.shape))}) and {gallery_source} "
                          f"({'×'.join(map(str, gf.shape))}) have different feature dimensions: they must come "
                          f"from the same model")
    if knn is not None and parse_knn(knn).name != "exact":
        return build_index(knn, gf, metric).search(qf, topk)
    dist = pairwise_distance(qf, gf, metric)
    idx = topk_smallest(dist, topk)
    return idx, np.take_along_axis(dist, idx, axis=1)


def result_rows(query_names: Sequence[str], idx: np.ndarray, dist: np.ndarray,
                gallery: Sequence[ImageRecord]) -> List[Dict[str, object]]:
    return [{"query_filename": qn, "predicted_id": gallery[g].pid, "predicted_path": gallery[g].path,
             "distance": f"{d:.6f}", "rank": r}
            for qn, row, drow in zip(query_names, idx, dist) for r, (g, d) in enumerate(zip(row, drow), 1)]


def write_result_csv(path: str, rows: Sequence[Dict[str, object]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
