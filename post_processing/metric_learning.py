"""Supervised metric learning on extracted features (metric-learn), after optional PCA.

The fitted model is one affine map ``x ↦ L · P · (x − mean)`` (P: PCA components, L: the learned
linear map), saved as a small ``.npz`` that loads and applies with numpy alone.

metric-learn 0.7.0 (its last release) validates inputs with scikit-learn's ``check_array`` /
``check_X_y`` and their ``force_all_finite`` argument, which scikit-learn 1.6 renamed
``ensure_all_finite`` and 1.8 removed. :func:`import_metric_learn` gives metric-learn, on a
scikit-learn that knows the new name, validators that pass the old argument on under it — the
same checks, so every release since 1.2 works without a pin.
"""
from __future__ import annotations

import functools
import inspect
import json
from typing import Callable, Optional

import numpy as np

from .errors import ReidError
from .fileio import atomic_write

# Lower-case name -> metric-learn class. ITML and RCA take pair/chunk constraints; their
# *_Supervised forms build those from class labels.
ALGORITHMS = {
    "lfda": "LFDA",
    "nca": "NCA",
    "itml": "ITML_Supervised",
    "lmnn": "LMNN",
    "mlkr": "MLKR",
    "rca": "RCA_Supervised",
}
_KEYS = ("name", "params", "mean", "pca", "L")


def finite_argument_renamed(check: Callable) -> Callable:
    """``check`` (a scikit-learn validator) also taking ``force_all_finite``, passed on as
    ``ensure_all_finite`` (the same values: True, False or ``"allow-nan"``)."""
    @functools.wraps(check)
    def call(*args, force_all_finite=None, **kwargs):
        if force_all_finite is not None:
            kwargs.setdefault("ensure_all_finite", force_all_finite)
        return check(*args, **kwargs)

    call.renames_force_all_finite = True
    return call


def import_metric_learn():
    """The ``metric_learn`` module, its input validators adapted to the installed scikit-learn
    (see the module docstring); the adaptation is installed once, and only where it is needed."""
    import metric_learn
    from metric_learn import _util

    for name in ("check_array", "check_X_y"):
        check = getattr(_util, name)
        params = inspect.signature(check).parameters
        if "ensure_all_finite" in params and not getattr(check, "renames_force_all_finite", False):
            setattr(_util, name, finite_argument_renamed(check))
    return metric_learn


def _resolve(name: str) -> str:
    key = str(name).lower()
    if key.endswith("_supervised"):
        key = key[: -len("_supervised")]
    if key not in ALGORITHMS:
        valid = ", ".join(v.split("_")[0] for v in ALGORITHMS.values())
        raise ValueError(f"unknown metric-learning algorithm {name!r}; valid (case-insensitive): {valid}")
    return ALGORITHMS[key]


class MetricLearningError(ReidError, ValueError):
    """The learner could not learn a usable metric from these training features."""


def check_params(name: str, params) -> None:
    """Refuse learner arguments the metric-learn class does not take, before any data is loaded
    (``ValueError`` naming the algorithm, the argument and the valid ones)."""
    metric_learn = import_metric_learn()
    cls_name = _resolve(name)
    accepted = list(inspect.signature(getattr(metric_learn, cls_name)).parameters)
    unknown = [k for k in params if k not in accepted]
    if unknown:
        raise ValueError(f"unknown {cls_name} parameter {unknown[0]!r}; valid: {', '.join(accepted)}")


def _features(X, what: str = "X") -> np.ndarray:
    x = np.asarray(X)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (N×D), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise ValueError(f"{what} must be finite numbers")
    return x.astype(np.float64)


class MetricLearner:
    """``MetricLearner(name, pca_dim=None, **params)``: fit on training features, apply to others.

    name: LFDA, NCA, ITML, LMNN, MLKR or RCA (case-insensitive; ITML/RCA use metric-learn's
    *_Supervised classes). pca_dim: centre and project onto this many principal components before
    fitting (default None = centre only) — needed for high-dimensional features, since most
    algorithms cost O(D²)–O(D³). params: passed to the metric-learn class (e.g. ``n_components``,
    ``k`` for LFDA, ``max_iter``); ``random_state`` defaults to 0 where the class takes one.
    MLKR is a regression method: it reads identity labels as numbers, so it rarely helps ReID.
    """

    def __init__(self, name: str, pca_dim: Optional[int] = None, **params):
        self.name = _resolve(name)
        if pca_dim is not None and (int(pca_dim) != pca_dim or pca_dim < 1):
            raise ValueError(f"pca_dim must be a positive integer or None, got {pca_dim!r}")
        self.pca_dim = None if pca_dim is None else int(pca_dim)
        self.params = dict(params)
        self.mean: Optional[np.ndarray] = None
        self.pca: Optional[np.ndarray] = None
        self.L: Optional[np.ndarray] = None

    def fit(self, X, y) -> "MetricLearner":
        """Fit PCA (if asked) and the metric on (N, D) features ``X`` with (N,) identity labels ``y``."""
        metric_learn = import_metric_learn()
        x = _features(X)
        labels = np.asarray(y)
        if labels.shape != (len(x),):
            raise ValueError(f"y must hold one label per row of X ({len(x)}), got shape {labels.shape}")
        self.mean = x.mean(axis=0)
        x = x - self.mean
        if self.pca_dim is not None:
            if self.pca_dim > min(x.shape):
                raise ValueError(f"pca_dim={self.pca_dim} exceeds min(samples, dims) = {min(x.shape)}")
            self.pca = np.linalg.svd(x, full_matrices=False)[2][: self.pca_dim]
            x = x @ self.pca.T
        else:
            self.pca = None
        cls = getattr(metric_learn, self.name)
        params = dict(self.params)
        if "random_state" in inspect.signature(cls).parameters:
            params.setdefault("random_state", 0)
        model = cls(**params).fit(x, labels)
        L = np.asarray(model.components_, dtype=np.float64)
        if not np.isfinite(L).all():
            raise MetricLearningError(f"{self.name} learned a non-finite transform on {x.shape[0]}×{x.shape[1]} "
                                      f"features (singular within-class statistics?); use a smaller pca_dim or "
                                      f"more data/constraints")
        self.L = L
        return self

    def _check_fitted(self):
        if self.L is None:
            raise RuntimeError(f"MetricLearner({self.name}) is not fitted; call fit() or load()")

    def transform(self, X) -> np.ndarray:
        """Map (N, D) features into the learned space: (N, d_out) float32, not normalised."""
        self._check_fitted()
        x = _features(X)
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"X has {x.shape[1]} dims, the metric was fitted on {self.mean.shape[0]}")
        x = x - self.mean
        if self.pca is not None:
            x = x @ self.pca.T
        return (x @ self.L.T).astype(np.float32)

    def save(self, path: str) -> None:
        """Write name, params, mean, PCA components (0×D when unused) and L to ``path`` (.npz), atomically."""
        self._check_fitted()
        try:
            params = json.dumps({"pca_dim": self.pca_dim, **self.params})
        except TypeError as e:
            raise ValueError(f"cannot save {path}: metric parameters must be JSON values ({e})") from e
        with atomic_write(path, "wb") as f:
            pca = np.zeros((0, len(self.mean))) if self.pca is None else self.pca
            np.savez(f, name=np.str_(self.name), params=np.str_(params), mean=self.mean, pca=pca, L=self.L)

    @classmethod
    def load(cls, path: str) -> "MetricLearner":
        """Read a learner written by ``save``; applying it needs numpy only."""
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _KEYS if k not in z.files]
            if missing:
                raise ValueError(f"{path}: not a saved MetricLearner, missing key(s) {', '.join(missing)}")
            params = json.loads(str(z["params"]))
            learner = cls(str(z["name"]), **params)
            mean, pca, L = z["mean"], z["pca"], z["L"]
        dim = mean.shape[0] if mean.ndim == 1 else -1
        in_dim = pca.shape[0] if pca.shape[0] else dim
        if mean.ndim != 1 or pca.ndim != 2 or pca.shape[1] != dim or L.ndim != 2 or L.shape[1] != in_dim:
            raise ValueError(f"{path}: inconsistent shapes mean {mean.shape}, pca {pca.shape}, L {L.shape}")
        learner.mean, learner.pca, learner.L = mean, (pca if pca.shape[0] else None), L
        return learner


def fit_metric(name: str, X, y, pca_dim: Optional[int] = None, **params) -> MetricLearner:
    """Convenience: ``MetricLearner(name, pca_dim, **params).fit(X, y)``."""
    return MetricLearner(name, pca_dim=pca_dim, **params).fit(X, y)
