"""``metric``: metric learning on the training features, then every feature set projected."""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any, Dict

import numpy as np

from post_processing.features import l2_normalize
from post_processing.metric_learning import ALGORITHMS, MetricLearner, MetricLearningError, check_params

from ..pipeline import FEATURES, Param, PipelineError, State, register_step


def _check(p: Dict[str, Any]) -> None:
    """The learner's ``params`` against its signature, so a typo fails before features are loaded."""
    try:
        check_params(p["method"], p["params"])
    except ValueError as e:
        raise ValueError(f"key 'params': {e}") from None


# Fitted learners by (training features, labels, settings): `ensemble tune` scores many pipelines that
# share the same metric step on the same fused features, and a fit (a full SVD, then the learner) is
# deterministic, so each distinct fit runs once per process. Bounded: a learner holds D x pca_dim floats.
_FITTED: "OrderedDict[str, MetricLearner]" = OrderedDict()
_FITTED_MAX = 8


def _fitted(train: np.ndarray, pids: np.ndarray, p: Dict[str, Any]) -> MetricLearner:
    """The learner ``p`` fitted on ``train``/``pids``, from the cache when the same fit was done before."""
    h = hashlib.sha1()
    for a in (np.ascontiguousarray(train), np.ascontiguousarray(pids)):
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(json.dumps([p["method"], p["pca_dim"], p["params"]], sort_keys=True, default=repr).encode())
    key = h.hexdigest()
    if key in _FITTED:
        _FITTED.move_to_end(key)
        return _FITTED[key]
    learner = MetricLearner(p["method"], pca_dim=p["pca_dim"], **p["params"]).fit(train, pids)
    _FITTED[key] = learner
    while len(_FITTED) > _FITTED_MAX:
        _FITTED.popitem(last=False)
    return learner


@register_step("metric", FEATURES, 10,
               "learn a metric on the training features (train_<model>.pkl + train labels), project all features",
               flag_params=("method",), needs_train=True, check=_check,
               method=Param(str, "lfda", "metric-learn algorithm", choices=tuple(ALGORITHMS)),
               pca_dim=Param(int, None, "PCA dimension before learning", minimum=1, optional=True,
                             aliases=("--pca-dim",)),
               params=Param(dict, {}, "extra keyword arguments of the learner"))
def _metric(state: State, p: Dict[str, Any]) -> None:
    if state.labels.train_pids is None or any(b.train is None for b in state.blocks):
        raise PipelineError("needs training features train_<model>.pkl and training labels; none were loaded")
    for blk in state.blocks:
        try:
            learner = _fitted(blk.train, state.labels.train_pids, p)
        except MetricLearningError as e:
            hint = (f"a smaller --pca-dim (pipeline key 'pca_dim', now {p['pca_dim']})" if p["pca_dim"] else
                    f"--pca-dim (pipeline key 'pca_dim') well below the {len(blk.train)} training images")
            raise PipelineError(f"model {blk.name!r}: {e}; try {hint}") from None
        except ValueError as e:
            raise PipelineError(f"model {blk.name!r}: {e}") from None
        blk.query, blk.gallery, blk.train = (l2_normalize(learner.transform(x)) for x in (blk.query, blk.gallery, blk.train))
