"""Fusion weights: per-query scores equal the table's scores, and split-half cross-validation keeps
equal weights where tuned ones only fit the validation queries' noise, and tunes where they gain."""
import numpy as np
import pytest

from ensembles.pipeline import Labels
from ensembles.report import per_query_scores, score
from ensembles.weight_search import MIN_QUERIES, coordinate_ascent, cross_validate

WEIGHTS = (0.0, 0.5, 1.0, 2.0)
FUSIONS = ("concat", "distance")


def _labels(protocol, options=None, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 12, 40)
    q[:3] = 11
    g = np.concatenate([np.arange(11), rng.integers(0, 11, 140)])  # id 11 has no gallery image
    return Labels(q, g, rng.integers(0, 4, 40), rng.integers(0, 4, len(g)), np.full(len(g), -1), has_gt=True,
                  protocol=protocol, protocol_options=dict(options or {}))


@pytest.mark.parametrize("protocol,options", [("aic", {}), ("aic", {"topk": 20}), ("market", {}),
                                              ("market", {"max_rank": 10})])
@pytest.mark.parametrize("objective", ["mAP", "aic_map"])
def test_per_query_scores_average_to_the_scores_of_the_table(protocol, options, objective):
    labels = _labels(protocol, options)
    ranking = np.argsort(np.random.default_rng(1).random((40, len(labels.g_pids))), axis=1)[:, :50]
    ap = per_query_scores(ranking, labels, objective, topk=50)
    assert ap.shape == (40,) and np.isnan(ap[:3]).all()  # id 11 has no match
    assert np.nanmean(ap) == pytest.approx(score(ranking, labels, topk=50)[objective], abs=1e-12)


def test_per_query_scores_are_none_where_the_score_is_not_a_mean_of_queries():
    labels = _labels("cuhk03")
    ranking = np.argsort(np.random.default_rng(1).random((40, len(labels.g_pids))), axis=1)[:, :50]
    assert per_query_scores(ranking, labels, "mAP", topk=50) is None


def _noise_only(n_queries, seed=0):
    """Every weighting scores 0.5 on average, less the further it is from equal weights, plus noise
    of its own on each query: what tuning on some queries finds there is noise."""
    rng = np.random.default_rng(seed)
    table = {}

    def per_query(config):
        if config not in table:
            w = np.asarray(config[1]) / sum(config[1])
            table[config] = 0.5 - 0.02 * np.abs(w - 1 / len(w)).sum() + 0.5 * rng.normal(size=n_queries)
        return table[config]

    return per_query


def _first_model_better(n_queries, seed=0):
    """The first model carries the signal: more of its weight scores higher on every query."""
    rng = np.random.default_rng(seed)
    base = rng.random(n_queries) * 0.5

    def per_query(config):
        w = np.asarray(config[1]) / sum(config[1])
        return base + 0.3 * w[0] + 0.01 * rng.normal(size=n_queries)

    return per_query


def test_cross_validation_keeps_equal_weights_when_tuning_fits_noise():
    cv = cross_validate(_noise_only(80), 3, WEIGHTS, FUSIONS, splits=30)
    assert cv.chosen == "equal" and cv.held_out["equal"] > cv.held_out["ascent"]
    assert cv.splits == 30 and cv.queries == 80 and cv.configs > 2
    again = cross_validate(_noise_only(80), 3, WEIGHTS, FUSIONS, splits=30)
    assert again.held_out == cv.held_out  # deterministic for a seed


def test_cross_validation_tunes_when_the_weights_carry_signal():
    cv = cross_validate(_first_model_better(80), 3, WEIGHTS, FUSIONS, splits=10)
    assert cv.chosen == "ascent" and cv.held_out["ascent"] > cv.held_out["equal"] + 0.05
    assert "weights tuned" in cv.sentence("mAP")


def test_cross_validation_has_nothing_to_decide_or_decide_with():
    assert cross_validate(_noise_only(80), 1, WEIGHTS, FUSIONS) is None  # one model
    assert cross_validate(_noise_only(80), 3, WEIGHTS, FUSIONS, splits=0) is None
    assert cross_validate(lambda c: None, 3, WEIGHTS, FUSIONS) is None  # no per-query scores
    few = np.full(MIN_QUERIES + 4, np.nan)
    few[:MIN_QUERIES - 1] = 0.5
    assert cross_validate(lambda c: few, 3, WEIGHTS, FUSIONS) is None  # too few scored queries


def test_queries_without_a_valid_match_are_left_out_of_every_half():
    per_query = _first_model_better(60)

    def with_nan(config):
        out = per_query(config).copy()
        out[:20] = np.nan
        return out

    cv = cross_validate(with_nan, 2, WEIGHTS, FUSIONS, splits=5)
    assert cv.queries == 40 and all(np.isfinite(v) for v in cv.held_out.values())


def test_coordinate_ascent_asks_the_budget_before_each_weight_trial():
    tried = []

    def value(config):
        tried.append(config)
        return -abs(config[1][0] - 2.0)

    calls = iter(range(1000))
    best, _ = coordinate_ascent(value, 2, WEIGHTS, FUSIONS, can_try=lambda: next(calls) < 3)
    assert len(tried) <= 2 + 3 and tried[:2] == [("concat", (1.0, 1.0)), ("distance", (1.0, 1.0))]
