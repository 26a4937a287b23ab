"""`ensemble visualize`: queries ordered by AP (worst first by default), picked by name, from a dataset
ranking or `ensemble search` results; and the per-query AP that fuse writes into its metrics JSON."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ensembles.pipeline import Labels
from ensembles.visualize import RankingView, VisualizeUsageError, select_queries, view_of_ranking
from global_model.data.records import ImageRecord
from post_processing.evaluation import average_precisions, evaluate_ranking


def view(ap):
    n = len(ap)
    return RankingView([f"q{i}.jpg" for i in range(n)], [f"/x/q{i}.jpg" for i in range(n)], ["g.jpg"],
                       np.zeros((n, 1), np.int64), [1] * n, [1], np.asarray(ap, float))


def test_worst_first_by_default_best_on_request_unscored_left_out():
    v = view([0.5, 0.1, np.nan, 0.9, 0.1])
    assert select_queries(v, 3) == [1, 4, 0]  # equal APs keep the query order
    assert select_queries(v, 3, "worst") == [1, 4, 0]
    assert select_queries(v, 2, "best") == [3, 0]
    assert select_queries(v, 10, "worst") == [1, 4, 0, 3]
    assert select_queries(v, 3, "spread") == [0, 2, 4]


def test_queries_by_name_in_the_order_given_and_unknown_names_suggest_close_ones():
    v = view([0.5, 0.1, 0.3])
    assert select_queries(v, 1, "best", names=["q2.jpg", "q0.jpg"]) == [2, 0]
    with pytest.raises(VisualizeUsageError, match="did you mean q1.jpg"):
        select_queries(v, 1, names=["q1.jpeg"])


def test_without_ap_the_default_is_spread_and_an_ap_order_is_refused():
    v = view([np.nan] * 5)
    assert select_queries(v, 2) == [0, 4]
    with pytest.raises(VisualizeUsageError, match="--order worst needs"):
        select_queries(v, 2, "worst")


def test_dataset_view_ap_is_the_protocol_ap_whose_mean_is_the_map():
    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(0, 4, 12), rng.integers(0, 4, 30)
    q_cams, g_cams = rng.integers(0, 2, 12), rng.integers(0, 3, 30)
    ranking = np.argsort(rng.random((12, 30)), axis=1)[:, :10]
    labels = Labels(q_pids=q_pids, g_pids=g_pids, q_camids=q_cams, g_camids=g_cams, g_tracks=np.full(30, -1),
                    has_gt=True)
    v = view_of_ranking([ImageRecord(f"/q/{i}.jpg", int(p), int(c)) for i, (p, c) in enumerate(zip(q_pids, q_cams))],
                        [ImageRecord(f"/g/{i}.jpg", int(p), int(c)) for i, (p, c) in enumerate(zip(g_pids, g_cams))],
                        ranking, labels)
    ap = average_precisions(ranking, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(v.ap, ap)
    assert np.nanmean(ap) == pytest.approx(evaluate_ranking(ranking, q_pids, g_pids, q_cams, g_cams)["mAP"])
    worst = select_queries(v, 12)
    assert list(v.ap[worst]) == sorted(v.ap[~np.isnan(v.ap)])
