"""The neighbour-search interface every backend implements, the ``--knn`` spec, and the registry."""
from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional, Tuple

import numpy as np

from post_processing.distance import METRICS
from post_processing.errors import ReidError, ReidUsageError
from post_processing.registry import Registry, UnknownNameError, import_submodules


class KnnError(ReidError, ValueError):
    """Vectors a neighbour index cannot take (wrong width, not finite), or an unreadable index state."""


class KnnUsageError(KnnError, ReidUsageError):
    """A ``--knn`` spec naming an unknown backend or parameter, or a parameter value out of range."""


class FaissMissingError(KnnUsageError):
    """A faiss backend was asked for but faiss is not installed."""


def _discover(name: Optional[str]) -> None:
    import_submodules(__package__)


KNN_BACKENDS: Registry = Registry("knn backend", discover=_discover)


class KnnSpec(NamedTuple):
    """A backend name and its parameters (strings as written; the backend converts them)."""

    name: str
    params: Dict[str, str]

    def __str__(self) -> str:
        return self.name + (":" + ",".join(f"{k}={v}" for k, v in self.params.items()) if self.params else "")


def parse_knn(spec: Any) -> KnnSpec:
    """``"faiss-ivf:nlist=1024,nprobe=32"`` (or a :class:`KnnSpec`, or None for ``exact``) as a KnnSpec
    whose backend exists and whose parameter names it knows."""
    if spec is None:
        return KnnSpec("exact", {})
    if isinstance(spec, KnnSpec):
        text = str(spec)
    else:
        text = str(spec).strip()
    name, _, rest = text.partition(":")
    params: Dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise KnnUsageError(f"--knn {text!r}: parameter {item!r} is not KEY=VALUE")
        params[key.strip()] = value.strip()
    try:
        backend = KNN_BACKENDS.get(name.strip())
    except UnknownNameError as exc:
        raise KnnUsageError(f"--knn {text!r}: {exc}") from None
    unknown = sorted(set(params) - set(backend.PARAMS))
    if unknown:
        known = ", ".join(f"{k} ({v})" for k, v in backend.PARAMS.items()) or "none"
        raise KnnUsageError(f"--knn {text!r}: {name} has no parameter {', '.join(unknown)} (known: {known})")
    return KnnSpec(name.strip(), params)


def _as_vectors(x, dim: Optional[int], what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
        raise KnnError(f"{what} must be a numeric 2-D array (N×D), got shape {a.shape} dtype {a.dtype}")
    if dim is not None and a.shape[1] != dim:
        raise KnnError(f"{what} are {a.shape[1]}-d but the index holds {dim}-d vectors")
    a = np.ascontiguousarray(a, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(a).all(axis=1)) if a.size else []
    if len(bad):
        raise KnnError(f"{what} row {int(bad[0])} is not finite")
    return a


def sq_to_metric(d2: np.ndarray, metric: str) -> np.ndarray:
    """Squared euclidean distances of prepared vectors (unit-norm for cosine) in ``metric``, float32 in
    place; non-finite entries (missing hits) stay as they are."""
    d2 = np.maximum(d2, 0, out=d2, where=np.isfinite(d2))
    if metric == "euclidean":
        return np.sqrt(d2)
    if metric == "cosine":
        return np.minimum(d2 * np.float32(0.5), np.float32(2.0), where=np.isfinite(d2), out=d2)
    return d2


class KnnIndex:
    """Vectors added in order (ids 0, 1, ...) and searched for their ``k`` nearest.

    Distances are in ``metric`` (one of :data:`post_processing.distance.METRICS`); every backend
    searches squared euclidean distances internally, on unit vectors for ``cosine``
    (``1 - cos = |a - b|² / 2``). Subclasses set ``PARAMS`` (parameter name → help) and implement
    ``_add``, ``_search`` (squared distances, ascending) and ``_state``/``_restore``.
    """

    name = ""
    PARAMS: Dict[str, str] = {}

    def __init__(self, dim: int, metric: str = "euclidean", params: Optional[Dict[str, str]] = None):
        if metric not in METRICS:
            raise KnnUsageError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
        self.dim = int(dim)
        self.metric = metric
        self.params = dict(params or {})
        self.ntotal = 0

    # -- parameters
    def _param(self, key: str, kind, default, minimum=None, choices=None):
        raw = self.params.get(key)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise KnnUsageError(f"--knn {self.name}: {key}={raw!r} is not {kind.__name__}") from None
        if (minimum is not None and value < minimum) or (choices is not None and value not in choices):
            want = f">= {minimum}" if minimum is not None else f"one of {', '.join(choices)}"
            raise KnnUsageError(f"--knn {self.name}: {key}={raw!r} must be {want}")
        return value

    # -- public API
    def prepare(self, x) -> np.ndarray:
        """``x`` as the float32 vectors the backend indexes (unit rows for cosine)."""
        a = _as_vectors(x, self.dim, "vectors")
        if self.metric == "cosine":
            norms = np.sqrt(np.einsum("ij,ij->i", a, a))
            if (norms == 0).any():
                raise KnnError(f"cosine metric: vector row {int(np.flatnonzero(norms == 0)[0])} has zero norm")
            a = a / norms[:, None]
        return a

    def add(self, x) -> None:
        """Append vectors (N×dim); they get ids ``ntotal .. ntotal+N-1``."""
        a = self.prepare(x)
        if len(a):
            self._add(a)
            self.ntotal += len(a)

    def search(self, x, k: int, batch: int = 4096) -> Tuple[np.ndarray, np.ndarray]:
        """``(ids int64 N×k', distances float32 N×k')``, nearest first, k' = min(k, ntotal); an
        approximate backend may return fewer hits than asked (id -1, distance inf)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise KnnUsageError(f"k must be an integer >= 1, got {k!r}")
        if self.ntotal == 0:
            raise KnnError("the index is empty")
        q = self.prepare(x)
        k = min(int(k), self.ntotal)
        ids = np.empty((len(q), k), np.int64)
        d2 = np.empty((len(q), k), np.float32)
        for s in range(0, len(q), batch):
            ids[s:s + batch], d2[s:s + batch] = self._search(q[s:s + batch], k)
        return ids, self.from_sq(d2)

    def from_sq(self, d2: np.ndarray) -> np.ndarray:
        """Squared euclidean distances (of prepared vectors) in this index's metric."""
        return sq_to_metric(d2, self.metric)

    def state(self) -> Dict[str, np.ndarray]:
        """Everything needed to rebuild the index, as named numpy arrays (see :func:`index_from_state`)."""
        head = {"backend": np.array(self.name), "spec": np.array(str(KnnSpec(self.name, self.params))),
                "metric": np.array(self.metric), "dim": np.array(self.dim), "ntotal": np.array(self.ntotal)}
        return {**head, **self._state()}

    # -- backend hooks
    def _add(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def _search(self, x: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _state(self) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def _restore(self, state: Dict[str, np.ndarray]) -> None:
        raise NotImplementedError


def build_index(spec: Any, x, metric: str = "euclidean") -> KnnIndex:
    """A ``spec`` index (see :func:`parse_knn`) holding the rows of ``x``, trained on them if it needs it."""
    s = parse_knn(spec)
    a = np.asarray(x)
    if a.ndim != 2:
        raise KnnError(f"vectors must be a 2-D array (N×D), got shape {a.shape}")
    index = KNN_BACKENDS.get(s.name)(a.shape[1], metric, s.params)
    index.add(a)
    return index


def index_from_state(state: Dict[str, np.ndarray], source: str = "index") -> KnnIndex:
    """The index :meth:`KnnIndex.state` described."""
    try:
        spec = parse_knn(str(state["spec"]))
        index = KNN_BACKENDS.get(spec.name)(int(state["dim"]), str(state["metric"]), spec.params)
        index._restore(state)
        index.ntotal = int(state["ntotal"])
    except KeyError as exc:
        raise KnnError(f"{source}: not a neighbour index (no {exc.args[0]!r} entry)") from None
    return index
