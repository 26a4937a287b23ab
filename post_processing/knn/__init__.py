"""Neighbour search backends: one interface (:class:`KnnIndex`) over the exact numpy search and faiss.

Backends are registered in :data:`KNN_BACKENDS` and chosen by a spec string, the value of every
``--knn`` option: ``exact`` (the default; blocked numpy GEMM, ties to the lower index), ``faiss``
(exact flat index; on the GPU when a faiss GPU build sees one), ``faiss-ivf`` (inverted lists:
``nlist``, ``nprobe``, optional product quantisation ``pq``) and ``faiss-hnsw`` (graph: ``m``,
``ef_construction``, ``ef_search``), with parameters after a colon:
``faiss-ivf:nlist=1024,nprobe=32``. faiss is an optional extra (``pip install reid-ensemble[faiss]``);
a faiss backend without it raises :class:`FaissMissingError` saying so.

Modules: ``base`` (interface, spec parsing, registry, errors), ``exact``, ``faiss_backends``,
``farthest`` (each item's largest distance, the normaliser k-reciprocal re-ranking needs).
"""
from .base import (KNN_BACKENDS, FaissMissingError, KnnError, KnnIndex, KnnSpec, KnnUsageError, build_index,
                   index_from_state, parse_knn)
from .farthest import farthest_sq

__all__ = ["KNN_BACKENDS", "FaissMissingError", "KnnError", "KnnIndex", "KnnSpec", "KnnUsageError", "build_index",
           "farthest_sq", "index_from_state", "parse_knn"]
