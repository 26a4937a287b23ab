"""Persistent gallery index: gallery features in a neighbour index (:mod:`post_processing.knn`) with
their image names, saved to one file so ``ensemble search --index`` never re-reads or re-indexes
the gallery, and grown with ``ensemble index add`` as new gallery images arrive.

The file is an ``.npz`` (no pickles): the backend's state arrays (a serialised faiss index, or the
vectors for ``exact``), ``names`` (image names in id order), ``format`` and ``meta`` (JSON: the
``--knn`` spec, metric, and the model fingerprint of the feature files it was built from). It is
written atomically.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from post_processing.errors import ReidError
from post_processing.features import FeatureSet
from post_processing.fileio import atomic_write
from post_processing.knn import KnnError, KnnIndex, build_index, index_from_state, parse_knn

FORMAT = "reid_ensemble_gallery_index/1"


class IndexFileError(ReidError, ValueError):
    """An unreadable gallery index file, or features that do not belong in it (width, model, names)."""


@dataclass
class GalleryIndex:
    """Gallery image ``names`` (in id order) and the neighbour ``index`` holding their features."""

    names: List[str]
    index: KnnIndex
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> Optional[str]:
        return self.meta.get("fingerprint")

    def search(self, queries: np.ndarray, topk: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(gallery ids, distances)``, each Q×min(topk, gallery size), nearest first."""
        return self.index.search(queries, topk)


def build_gallery_index(features: FeatureSet, knn: Any = None, metric: str = "cosine") -> GalleryIndex:
    """A gallery index of ``features`` with the ``knn`` backend (None: exact) under ``metric``."""
    spec = parse_knn(knn)
    index = build_index(spec, features.feats, metric)
    return GalleryIndex(list(features.names), index,
                        {"knn": str(spec), "metric": metric, "fingerprint": features.fingerprint,
                         "sources": [features.path]})


def add_to_index(gallery: GalleryIndex, features: FeatureSet) -> int:
    """Append ``features`` (same model, new names) to ``gallery``; returns how many were added.
    Earlier images keep their ids, so earlier search results stay valid."""
    src = features.path or "the new features"
    if features.feats.ndim != 2 or features.feats.shape[1] != gallery.index.dim:
        raise IndexFileError(f"{src}: {features.feats.shape[-1]}-d features, the index holds "
                             f"{gallery.index.dim}-d ones (another model?)")
    if gallery.fingerprint and features.fingerprint and features.fingerprint != gallery.fingerprint:
        raise IndexFileError(f"{src}: model fingerprint {features.fingerprint} differs from the index's "
                             f"{gallery.fingerprint}: the features come from another model")
    known = set(gallery.names)
    dup = [n for n in features.names if n in known]
    if dup:
        raise IndexFileError(f"{src}: {len(dup)} image(s) already in the index, first: {', '.join(dup[:5])}")
    gallery.index.add(features.feats)
    gallery.names.extend(features.names)
    gallery.meta.setdefault("sources", []).append(features.path)
    return len(features.names)


def save_gallery_index(path: str, gallery: GalleryIndex) -> None:
    """Write ``gallery`` to ``path`` atomically."""
    arrays = {f"index_{k}": v for k, v in gallery.index.state().items()}
    with atomic_write(path, "wb") as f:
        np.savez(f, format=np.array(FORMAT), names=np.array(gallery.names, dtype=str),
                 meta=np.array(json.dumps(gallery.meta)), **arrays)


def load_gallery_index(path: str) -> GalleryIndex:
    """The gallery index saved at ``path``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise IndexFileError(f"{path}: no such gallery index") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise IndexFileError(f"{path}: not a gallery index ({exc})") from None
    if str(data.get("format", "")) != FORMAT:
        raise IndexFileError(f"{path}: not a gallery index written by `ensemble index build` "
                             f"(format {str(data.get('format', 'missing'))!r}, expected {FORMAT!r})")
    try:
        index = index_from_state({k[6:]: v for k, v in data.items() if k.startswith("index_")}, path)
    except KnnError as exc:
        raise IndexFileError(str(exc)) from None
    names = [str(n) for n in data["names"]]
    if len(names) != index.ntotal:
        raise IndexFileError(f"{path}: {len(names)} names for {index.ntotal} indexed vectors")
    return GalleryIndex(names, index, json.loads(str(data["meta"])))
