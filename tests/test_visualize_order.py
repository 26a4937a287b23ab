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
    assert select_queries(v, 3, "spread") == [1, 0, 3]  # worst, middle, best of the four with an AP


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


@pytest.fixture(scope="module")
def fused(tmp_path_factory, ensemble_fakes):
    """A fake AIC tree with images, model a's features, and a fuse run's track2.txt + metrics JSON."""
    from click.testing import CliRunner

    from ensembles.cli import main

    base = tmp_path_factory.mktemp("vis")
    tree = ensemble_fakes.build_tree(str(base / "data"), images=True, n_ids=12, per_id=4)
    ensemble_fakes.write_features(str(base / "feats"), tree, {"a": 1.2})
    res = CliRunner().invoke(main, ["fuse", "--models", "a", "--features-dir", str(base / "feats"), "--data-root",
                                    str(base / "data"), "--out", str(base / "track2.txt"), "--metrics-out",
                                    str(base / "metrics.json"), "--topk", "20"])
    assert res.exit_code == 0, res.output
    with open(base / "metrics.json", encoding="utf-8") as f:
        return base, tree, json.load(f)


def run(*args, code=0):
    from click.testing import CliRunner

    from ensembles.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == code, res.output + repr(res.exception)
    return res


def rows_drawn(png):
    import cv2

    from ensembles.visualize import BORDER, CELL, LABEL_H

    return cv2.imread(str(png)).shape[0] // (LABEL_H + CELL[0] + 2 * BORDER + 6)


def test_fuse_metrics_hold_every_query_ap_worst_first(fused):
    _, tree, metrics = fused
    per_query = metrics["per_query"]
    assert sorted(q["query"] for q in per_query) == sorted(tree.query)
    aps = [q["ap"] for q in per_query]
    assert aps == sorted(aps) and aps[0] < 1.0  # noisy features: some query fails
    assert np.mean(aps) == pytest.approx(metrics["mAP"])


def test_visualize_draws_the_worst_queries_by_default_or_the_named_ones(fused, tmp_path):
    base, _, metrics = fused
    png = tmp_path / "r.png"
    res = run("visualize", base / "track2.txt", "--data-root", base / "data", "--out", png, "--queries", 3)
    assert "worst AP first" in res.output and rows_drawn(png) == 3
    worst = [q["query"] for q in metrics["per_query"][:2]]
    run("visualize", base / "track2.txt", "--data-root", base / "data", "--out", png, "--query", worst[1],
        "--query", worst[0])
    assert rows_drawn(png) == 2
    res = run("visualize", base / "track2.txt", "--data-root", base / "data", "--out", png, "--query", "nope.jpg",
              code=2)
    assert "'nope.jpg' is not among the 12 queries" in res.output


def test_visualize_reads_search_results(fused, tmp_path):
    base, tree, _ = fused
    run("search", "--query-features", base / "feats" / "query_a.pkl", "--gallery-features",
        base / "feats" / "gallery_a.pkl", "--data-root", base / "data", "--topk", 4, "--out", tmp_path / "s")
    png = tmp_path / "r.png"
    res = run("visualize", tmp_path / "s" / "results.json", "--out", png, "--order", "best", "--queries", 5)
    assert rows_drawn(png) == 5 and "x top-4" in res.output
    res = run("visualize", tmp_path / "s" / "results.json", "--data-root", base / "data", "--out", png, code=2)
    assert "search results" in res.output


def test_plot_draws_tsne_histograms_and_roc(fused, tmp_path):
    import cv2

    base, _, _ = fused
    outs = {k: tmp_path / f"{k}.png" for k in ("tsne", "hist", "roc")}
    res = run("plot", "--features-dir", base / "feats", "--model", "a", "--data-root", base / "data",
              "--tsne-out", outs["tsne"], "--hist-out", outs["hist"], "--roc-out", outs["roc"], "--tsne-ids", 5)
    assert all(cv2.imread(str(p)) is not None for p in outs.values())
    assert "AUC" in res.output and "25 images of 5 identities" in res.output
    res = run("plot", "--features-dir", base / "feats", "--model", "a", "--data-root", base / "data", code=2)
    assert "nothing to draw" in res.output
