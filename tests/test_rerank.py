"""k-reciprocal re-ranking: the numba entry points against the plain numpy transcription
``post_processing.rerank.reference`` (argsort made stable so ties are defined), which the
benchmark ``scripts/bench/rerank.py`` checks against too."""
import sys

import numpy as np
import pytest

from post_processing.distance import pairwise_distance
from post_processing.errors import ReidError
from post_processing.rerank import RerankError, re_ranking, re_ranking_features, reference_re_ranking, streaming

PARAMS = [(20, 6, 0.3), (5, 1, 0.5), (7, 9, 0.0)]  # default, no query expansion, k2 > k1 + 1


def stable_topk(final, k):
    order = np.argsort(final, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(final, order, axis=1)


def features(kind, q=30, g=250, d=16, seed=0):
    """``lattice``: small integers, so distances are exact, symmetric and full of ties;
    ``gauss``: float features with a few exact duplicates (ties across query/gallery)."""
    rng = np.random.default_rng(seed)
    if kind == "lattice":
        x = rng.integers(-2, 3, size=(q + g, d)).astype(np.float32)
    else:
        x = rng.standard_normal((q + g, d)).astype(np.float32)
        x[q + 5] = x[3]
        x[q + 7] = x[q + 9] = x[q + 11]
    return x[:q], x[q:]


def mirrored(d):
    return np.triu(d) + np.triu(d, 1).T


def matrices(Q, G, metric="euclidean", symmetric=False):
    sym = mirrored if symmetric else (lambda d: d)
    return (pairwise_distance(Q, G, metric), sym(pairwise_distance(Q, Q, metric)),
            sym(pairwise_distance(G, G, metric)))


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("kind,seed", [("gauss", 0), ("lattice", 1), ("gauss", 2)])
def test_matches_numpy_transcription(kind, seed, params):
    mats = matrices(*features(kind, seed=seed))
    expected = reference_re_ranking(*mats, *params)
    got = re_ranking(*mats, *params)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    for a, b in zip(stable_topk(got, 100), stable_topk(expected, 100)):
        np.testing.assert_array_equal(a, b)


def test_matches_transcription_on_float64_asymmetric_and_tiny_inputs():
    rng = np.random.default_rng(3)
    q_g, q_q, g_g = (rng.random(s) * 4 for s in ((6, 9), (6, 6), (9, 9)))  # not symmetric, float64
    q_g[0, :3] = q_g[0, 3]  # ties inside a row
    for params in [(20, 6, 0.3), (3, 2, 0.7)]:  # k1 + 1 larger than q + g, then a small k1
        np.testing.assert_allclose(re_ranking(q_g, q_q, g_g, *params),
                                   reference_re_ranking(q_g, q_q, g_g, *params), rtol=0, atol=1e-5)


@pytest.mark.parametrize("params", PARAMS[:2])
@pytest.mark.parametrize("block_size", [4096, 64, 37])
def test_feature_level_equals_matrix_level_on_exact_distances(block_size, params):
    Q, G = features("lattice", seed=4)
    mats = matrices(Q, G)
    assert np.array_equal(mats[2], mats[2].T)  # integer features: distances are exactly symmetric
    idx, dist = re_ranking_features(Q, G, *params, block_size=block_size)
    ref_idx, ref_dist = stable_topk(re_ranking(*mats, *params), 100)
    assert idx.dtype == np.int64 and dist.dtype == np.float32 and idx.shape == (len(Q), 100)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_feature_level_equals_matrix_level_on_float_features(metric):
    Q, G = features("gauss", seed=5)
    idx, dist = re_ranking_features(Q, G, topk=40, metric=metric)
    ref_idx, ref_dist = stable_topk(re_ranking(*matrices(Q, G, metric, symmetric=True)), 40)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)


def test_feature_level_recomputes_what_its_lists_miss(monkeypatch):
    """With no candidate margin every list is ambiguous and many weights are outside the kept
    lists: the block recomputation paths must run and still give the exact answer."""
    calls = set()

    def spy(name):
        real = getattr(streaming, name)

        def wrapper(*args):
            calls.add(name)
            return real(*args)
        monkeypatch.setattr(streaming, name, wrapper)

    spy("_exact_rows")
    spy("_fill_missing")
    monkeypatch.setattr(streaming, "_MARGIN", 1)
    Q, G = features("lattice", seed=6)
    idx, dist = re_ranking_features(Q, G, block_size=64)
    ref_idx, ref_dist = stable_topk(re_ranking(*matrices(Q, G)), 100)
    assert set(calls) == {"_exact_rows", "_fill_missing"}
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)


def test_topk_larger_than_gallery_returns_whole_ranking():
    Q, G = features("gauss", q=4, g=12, seed=7)
    idx, dist = re_ranking_features(Q, G, k1=4, k2=2, topk=50)
    ref_idx, ref_dist = stable_topk(re_ranking(*matrices(Q, G, symmetric=True), k1=4, k2=2), 12)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)


def test_float16_weights_stay_close_to_float32():
    Q, G = features("gauss", seed=8)
    mats = matrices(Q, G, symmetric=True)
    full32 = re_ranking(*mats)
    full16 = re_ranking(*mats, weight_dtype=np.float16)
    assert full16.dtype == np.float32
    assert 0 < np.abs(full16 - full32).max() < 2e-3
    _, dist16 = re_ranking_features(Q, G, weight_dtype=np.float16)
    np.testing.assert_allclose(dist16, stable_topk(full16, 100)[1], rtol=0, atol=2e-3)


def test_progress_bar_is_shown_on_request_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    Q, G = features("gauss", q=5, g=20, seed=9)
    re_ranking(*matrices(Q, G), k1=4, progress=True)
    re_ranking_features(Q, G, k1=4, progress=True)
    assert capsys.readouterr().err.count("re-ranking") >= 2


def test_progress_bar_stays_out_of_logs(capsys):
    Q, G = features("gauss", q=5, g=20, seed=9)
    re_ranking(*matrices(Q, G), k1=4, progress=True)  # stderr is captured: not a terminal
    assert "re-ranking" not in capsys.readouterr().err


def _nan_at(d, i, j):
    d = d.copy()
    d[i, j] = np.nan
    return d


def _inf_at(x, i, j):
    x = x.copy()
    x[i, j] = np.inf
    return x


_Q, _G = features("gauss", q=5, g=20, seed=10)
_QG, _QQ, _GG = matrices(_Q, _G)
_INPUTS = {re_ranking: dict(q_g_dist=_QG, q_q_dist=_QQ, g_g_dist=_GG),
           re_ranking_features: dict(query_feats=_Q, gallery_feats=_G)}


@pytest.mark.parametrize("call,changes,error,message", [
    (re_ranking, dict(g_g_dist=_GG[:, :19]), RerankError, r"g_g_dist must be 20×20"),
    (re_ranking, dict(q_q_dist=_GG), RerankError, r"q_q_dist must be 5×5"),
    (re_ranking, dict(g_g_dist=_nan_at(_GG, 3, 4)), RerankError, "g_g_dist contains NaN or infinite"),
    (re_ranking, dict(k1=0), RerankError, "k1 must be an integer >= 1"),
    (re_ranking, dict(lambda_value=1.5), RerankError, "lambda_value must be in"),
    (re_ranking, dict(weight_dtype=np.float64), RerankError, "weight_dtype must be float32 or float16"),
    (re_ranking, dict(q_g_dist=np.zeros((1, 2)), q_q_dist=np.zeros((1, 1)), g_g_dist=np.zeros((2, 2))),
     RerankError, "every distance from query 0 is zero"),
    (re_ranking_features, dict(gallery_feats=_G[:, :15]), RerankError, "16-d but gallery_feats are 15-d"),
    (re_ranking_features, dict(gallery_feats=_inf_at(_G, 7, 0)), RerankError, "gallery_feats row 7 is not finite"),
    (re_ranking_features, dict(metric="manhattan"), ValueError, "unknown metric"),  # pairwise_distance's check
], ids=["gg-shape", "qq-shape", "nan", "k1", "lambda", "weight-dtype", "all-zero", "dims", "inf-feature",
        "metric"])
def test_bad_inputs_are_refused_with_the_offending_argument(call, changes, error, message):
    with pytest.raises(error, match=message):
        call(**{**_INPUTS[call], **changes})


def test_bad_input_errors_are_project_errors_and_value_errors():
    assert issubclass(RerankError, ReidError) and issubclass(RerankError, ValueError)
