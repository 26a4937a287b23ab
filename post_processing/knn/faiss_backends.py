"""faiss backends: ``faiss`` (exact flat index, on the GPU when a faiss GPU build sees one),
``faiss-ivf`` (inverted lists, optionally product-quantised) and ``faiss-hnsw`` (graph).

faiss is imported on first use; without it every faiss backend raises :class:`FaissMissingError`.
An index is created when the first vectors are added: ``faiss-ivf`` trains its coarse quantiser
(and PQ codebooks) on those (a seeded sample of ``train_size`` rows), later additions only add.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np

from .base import KNN_BACKENDS, FaissMissingError, KnnError, KnnIndex

_INSTALL = ("faiss is not installed: `pip install faiss-cpu` (or a faiss GPU build; the project extra is "
            "`pip install reid-ensemble[faiss]`), or use --knn exact")


def import_faiss():
    """The faiss module, or :class:`FaissMissingError` saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise FaissMissingError(_INSTALL) from None
    return faiss


class _FaissIndex(KnnIndex):
    """A faiss index created lazily at the first :meth:`add`; ``_make`` builds it for a metric."""

    def __init__(self, dim, metric="euclidean", params=None):
        super().__init__(dim, metric, params)
        self.faiss = import_faiss()
        self._check_params()
        self.index = None

    def _check_params(self) -> None:
        """Convert every parameter once, so a bad value fails before any work."""

    def _make(self, dim: int, metric_type: int, n: int):
        raise NotImplementedError

    def _train(self, index, x: np.ndarray) -> None:
        if not index.is_trained:
            size = self._param("train_size", int, None, minimum=1) or len(x)
            if size < len(x):
                x = x[np.sort(np.random.default_rng(self._param("seed", int, 0)).choice(len(x), size, replace=False))]
            index.train(x)

    def _add(self, x):
        try:
            if self.index is None:
                index = self._make(self.dim, self.faiss.METRIC_L2, len(x))
                self._train(index, x)
                self.index = index
            self.index.add(x)
        except RuntimeError as exc:  # faiss reports bad sizes (too few training rows for nlist/pq) this way
            detail = str(exc).strip().splitlines()[-1].split("Error: ")[-1]
            raise KnnError(f"--knn {self.name}: faiss cannot index {len(x)} vectors of {self.dim}-d: {detail}") from None

    def _search(self, x, k) -> Tuple[np.ndarray, np.ndarray]:
        d2, ids = self.index.search(x, k)
        missing = ids < 0
        d2[missing] = np.inf
        order = np.lexsort((ids, d2), axis=-1)
        return np.take_along_axis(ids, order, 1).astype(np.int64), np.take_along_axis(d2, order, 1)

    def _cpu_index(self):
        return self.index

    def _state(self):
        return {"faiss": self.faiss.serialize_index(self._cpu_index())} if self.index is not None else {}

    def _restore(self, state):
        if "faiss" in state:
            self.index = self._after_restore(self.faiss.deserialize_index(np.asarray(state["faiss"], np.uint8)))

    def _after_restore(self, index):
        return index

    @classmethod
    def max_inner_product(cls, data: np.ndarray, queries: np.ndarray, params: Dict[str, str]) -> np.ndarray:
        """``max_j <queries_i, data_j>`` with an inner-product index of this kind (see :mod:`.farthest`);
        product quantisation is left out (its codes do not fit the augmented width)."""
        self = cls(data.shape[1], "sqeuclidean", {k: v for k, v in params.items() if k not in ("pq", "bits")})
        index = self._make(data.shape[1], self.faiss.METRIC_INNER_PRODUCT, len(data))
        self._train(index, data)
        index.add(data)
        out = np.empty(len(queries), np.float32)
        for s in range(0, len(queries), 4096):
            ip, ids = index.search(queries[s:s + 4096], 1)
            out[s:s + 4096] = np.where(ids[:, 0] >= 0, ip[:, 0], 0.0)
        return out


@KNN_BACKENDS.register("faiss")
class FaissFlatIndex(_FaissIndex):
    """Exact search with faiss's flat index, on every visible GPU when a faiss GPU build is installed."""

    name = "faiss"
    PARAMS = {"gpu": "auto (default: GPU when faiss sees one), yes, no"}

    def _check_params(self):
        self._gpu = self._param("gpu", str, "auto", choices=("auto", "yes", "no"))
        gpus = self.faiss.get_num_gpus() if hasattr(self.faiss, "get_num_gpus") else 0
        if self._gpu == "yes" and gpus == 0:
            raise KnnError("--knn faiss:gpu=yes but faiss sees no GPU (a faiss GPU build and a CUDA device are needed)")
        self.on_gpu = self._gpu != "no" and gpus > 0

    def _make(self, dim, metric_type, n):
        index = self.faiss.IndexFlat(dim, metric_type)
        return self.faiss.index_cpu_to_all_gpus(index) if self.on_gpu else index

    def _cpu_index(self):
        return self.faiss.index_gpu_to_cpu(self.index) if self.on_gpu else self.index

    def _after_restore(self, index):
        return self.faiss.index_cpu_to_all_gpus(index) if self.on_gpu else index


@KNN_BACKENDS.register("faiss-ivf")
class FaissIVFIndex(_FaissIndex):
    """Approximate search in ``nprobe`` of ``nlist`` k-means cells; ``pq=M`` stores M-byte PQ codes
    instead of the vectors (for galleries that do not fit in memory as float32)."""

    name = "faiss-ivf"
    PARAMS = {"nlist": "k-means cells (default √N, at most N/39)", "nprobe": "cells searched (default 16)",
              "niter": "k-means iterations (default 10)",
              "pq": "product-quantiser bytes per vector, dividing the dimension (default 0: store vectors)",
              "bits": "bits per PQ code (default 8)", "train_size": "rows the quantisers are trained on "
              "(default 64·nlist, at most the first addition)", "seed": "sampling seed (default 0)"}

    def _check_params(self):
        self._nprobe = self._param("nprobe", int, 16, minimum=1)
        self._pq = self._param("pq", int, 0, minimum=0)
        self._bits = self._param("bits", int, 8, minimum=1)
        self._param("nlist", int, None, minimum=1)
        self._niter = self._param("niter", int, 10, minimum=1)
        self._param("train_size", int, None, minimum=1)
        self._param("seed", int, 0)
        if self._pq and self.dim % self._pq:
            raise KnnError(f"--knn faiss-ivf: pq={self._pq} must divide the dimension {self.dim}")

    def _make(self, dim, metric_type, n):
        nlist = self._nlist(n)
        quantiser = self.faiss.IndexFlat(dim, metric_type)
        if self._pq:
            index = self.faiss.IndexIVFPQ(quantiser, dim, nlist, self._pq, self._bits, metric_type)
        else:
            index = self.faiss.IndexIVFFlat(quantiser, dim, nlist, metric_type)
        index.nprobe = min(self._nprobe, nlist)
        index.cp.niter = self._niter
        if self._pq:
            index.pq.cp.niter = self._niter
        index.own_fields = True
        quantiser.this.disown()
        return index

    def _nlist(self, n):
        return self._param("nlist", int, None) or max(1, min(int(round(math.sqrt(n))), n // 39))

    def _train(self, index, x):
        if not index.is_trained and "train_size" not in self.params and len(x) > 64 * index.nlist:
            keep = np.random.default_rng(self._param("seed", int, 0)).choice(len(x), 64 * index.nlist, replace=False)
            x = x[np.sort(keep)]
        super()._train(index, x)

    def _after_restore(self, index):
        self.faiss.extract_index_ivf(index).nprobe = min(self._nprobe, self.faiss.extract_index_ivf(index).nlist)
        return index


@KNN_BACKENDS.register("faiss-hnsw")
class FaissHNSWIndex(_FaissIndex):
    """Approximate search on a hierarchical navigable small-world graph (no training)."""

    name = "faiss-hnsw"
    PARAMS = {"m": "graph links per node (default 32)", "ef_construction": "build beam (default 80)",
              "ef_search": "search beam (default 128; raised to k when smaller)"}

    def _check_params(self):
        self._m = self._param("m", int, 32, minimum=2)
        self._efc = self._param("ef_construction", int, 80, minimum=1)
        self._efs = self._param("ef_search", int, 128, minimum=1)

    def _make(self, dim, metric_type, n):
        index = self.faiss.IndexHNSWFlat(dim, self._m, metric_type)
        index.hnsw.efConstruction = self._efc
        index.hnsw.efSearch = self._efs
        return index

    def _search(self, x, k):
        self.index.hnsw.efSearch = max(self._efs, k)
        return super()._search(x, k)

    def _after_restore(self, index):
        index.hnsw.efSearch = self._efs
        return index
