"""Metric learning: metric-learn 0.7.0 works on the installed (newest) scikit-learn, learned maps raise mAP, and
fitted learners save/load as numpy-only .npz files."""
import numpy as np
import pytest

from post_processing.evaluation import evaluate
from post_processing.metric_learning import MetricLearner, finite_argument_renamed, fit_metric, import_metric_learn


def identities(n_ids, per_id, rng, signal_dims=2, noise_dims=10):
    """Ids differ only in ``signal_dims`` low-variance dims, drowned by high-variance noise dims."""
    centres = rng.normal(size=(n_ids, signal_dims))
    pids = np.repeat(np.arange(n_ids), per_id)
    signal = centres[pids] + 0.05 * rng.normal(size=(len(pids), signal_dims))
    noise = 3.0 * rng.normal(size=(len(pids), noise_dims))
    return np.hstack([signal, noise]), pids


def map_of(transform, rng):
    """mAP on unseen ids: one query (camera 0) and four gallery images (camera 1) per id."""
    x, pids = identities(20, 5, rng)
    is_query = np.arange(len(x)) % 5 == 0
    q, g = transform(x[is_query]), transform(x[~is_query])
    d = ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    return evaluate(d, pids[is_query], pids[~is_query], np.zeros(is_query.sum(), int),
                    np.ones((~is_query).sum(), int))["mAP"]


@pytest.mark.parametrize("name, params", [
    ("lfda", {"k": 2, "n_components": 3}), ("nca", {"max_iter": 20, "n_components": 3}),
    ("itml", {"max_iter": 20, "n_constraints": 60}), ("lmnn", {"max_iter": 5, "n_neighbors": 2}),
    ("mlkr", {"max_iter": 5, "n_components": 3}), ("rca", {"n_chunks": 6}),
])
def test_every_algorithm_fits_on_the_installed_scikit_learn(name, params):
    """No scikit-learn pin: metric-learn 0.7.0 runs on every release since 1.2 (the newest included)."""
    x, y = identities(6, 5, np.random.default_rng(0), noise_dims=4)
    learner = fit_metric(name, x, y, **params)
    assert learner.L.shape[1] == 6 and np.isfinite(learner.L).all()


def test_old_finite_argument_reaches_a_validator_that_only_knows_the_new_one():
    calls = []

    def check(X, *, ensure_all_finite=True):
        calls.append(ensure_all_finite)
        return X

    wrapped = finite_argument_renamed(check)
    wrapped(1, force_all_finite="allow-nan")
    wrapped(1, force_all_finite=False)
    wrapped(1)
    assert calls == ["allow-nan", False, True] and wrapped.__name__ == "check"


def test_metric_learn_validators_keep_their_meaning_on_the_installed_scikit_learn():
    from metric_learn import _util

    import_metric_learn()
    import_metric_learn()  # idempotent: no wrapper around a wrapper
    bad = np.array([[np.nan, 1.0]])
    with pytest.raises(ValueError):
        _util.check_array(bad, force_all_finite=True)
    assert _util.check_array(bad, force_all_finite=False).shape == (1, 2)
    assert _util.check_X_y(bad, [0], force_all_finite="allow-nan")[0].shape == (1, 2)
    wrapped = getattr(_util.check_array, "__wrapped__", None)
    assert getattr(wrapped, "renames_force_all_finite", False) is False


@pytest.mark.parametrize("name, pca_dim, params", [
    ("lfda", None, {"n_components": 2, "k": 3}),
    ("NCA", 12, {"n_components": 2, "max_iter": 50}),
])
def test_learned_metric_raises_map_on_hidden_subspace(name, pca_dim, params):
    x, y = identities(30, 6, np.random.default_rng(1))
    learner = fit_metric(name, x, y, pca_dim=pca_dim, **params)
    before = map_of(lambda f: f, np.random.default_rng(2))
    after = map_of(learner.transform, np.random.default_rng(2))
    assert before < 0.5 and after > before + 0.3, (before, after)


def test_save_load_round_trip_applies_with_numpy_only(tmp_path):
    x, y = identities(8, 4, np.random.default_rng(3))
    learner = MetricLearner("LFDA", pca_dim=5, n_components=3, k=2).fit(x, y)
    path = str(tmp_path / "lfda.npz")
    learner.save(path)
    loaded = MetricLearner.load(path)
    assert (loaded.name, loaded.pca_dim, loaded.params) == ("LFDA", 5, {"n_components": 3, "k": 2})
    out = loaded.transform(x)
    assert out.shape == (len(x), 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, learner.transform(x), atol=1e-6)
    assert not np.allclose(out, x[:, :3] - x[:, :3].mean(0), atol=1e-2)


def test_round_trip_without_pca(tmp_path):
    x, y = identities(12, 6, np.random.default_rng(4))
    learner = fit_metric("rca", x, y, n_chunks=30, chunk_size=2)
    path = str(tmp_path / "rca.npz")
    learner.save(path)
    out = MetricLearner.load(path).transform(x)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, learner.transform(x), atol=1e-6)


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
def test_non_finite_learned_map_is_refused():
    x, y = identities(8, 4, np.random.default_rng(4))  # 10 chunk pairs cannot span 12 dims
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="RCA_Supervised learned a non-finite transform"):
        fit_metric("rca", x, y, n_chunks=10)


def test_names_are_case_insensitive_and_unknown_names_list_the_valid_ones():
    assert MetricLearner("itml").name == "ITML_Supervised"
    assert MetricLearner("Rca_Supervised").name == "RCA_Supervised"
    assert MetricLearner("lmnn").name == "LMNN" and MetricLearner("MlKr").name == "MLKR"
    with pytest.raises(ValueError, match="unknown metric-learning algorithm 'kissme'.*LFDA, NCA, ITML, LMNN, MLKR, RCA"):
        MetricLearner("kissme")


def test_bad_inputs_and_files_are_refused(tmp_path):
    learner = MetricLearner("lfda")
    with pytest.raises(RuntimeError, match="not fitted"):
        learner.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one label per row"):
        learner.fit(np.zeros((4, 3)), [0, 1])
    with pytest.raises(ValueError, match="pca_dim=9 exceeds"):
        MetricLearner("lfda", pca_dim=9).fit(np.random.default_rng(0).normal(size=(6, 3)), [0, 0, 1, 1, 2, 2])
    bad = tmp_path / "other.npz"
    np.savez(bad, mean=np.zeros(3))
    with pytest.raises(ValueError, match=r"other\.npz: not a saved MetricLearner, missing key\(s\) name, params, pca, L"):
        MetricLearner.load(str(bad))
    x, y = identities(6, 4, np.random.default_rng(5))
    fitted = fit_metric("lfda", x, y, n_components=2, k=2)
    with pytest.raises(ValueError, match="X has 5 dims, the metric was fitted on 12"):
        fitted.transform(x[:, :5])
