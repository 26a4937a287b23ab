"""Steps come from the registry alone (a step registered here shows up in `steps`, `fuse` and `tune`);
every built-in step runs from its option; fusion arithmetic; pipeline YAML round trip."""
from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np
import pytest
from click.testing import CliRunner

from ensembles.cli import main
from ensembles.fusion import FusionError, block_distance, make_blocks
from ensembles.pipeline import DISTANCES, STEPS, Param, Pipeline, PipelineError, Step, canonical_order, register_step
from post_processing.registry import RegistryError


@pytest.fixture(scope="module")
def case(tmp_path_factory, ensemble_fakes):
    base = tmp_path_factory.mktemp("steps")
    tree = ensemble_fakes.build_tree(str(base / "data"), train_ids=12)
    ensemble_fakes.write_features(str(base / "feats"), tree, {"a": 1.0, "b": 1.2})
    cams = dataclasses.replace(tree, q_pids=tree.q_cams, g_pids=tree.g_cams, train=[], t_pids=[])
    # a "camera model": features of the camera
    ensemble_fakes.write_features(str(base / "feats"), cams, {"cam": 0.1}, seed=5)
    return base, tree


def fuse(base, out, *extra, code=0):
    res = CliRunner().invoke(main, ["fuse", "--models", "a,b", "--features-dir", str(base / "feats"), "--data-root",
                                    str(base / "data"), "--out", str(out), "--metrics-out", str(out) + ".json",
                                    *map(str, extra)])
    assert res.exit_code == code, res.output + repr(res.exception)
    return res


STEP_OPTIONS = {  # one command line per built-in step
    "metric": ["--metric", "lfda", "--pca-dim", "8"],
    "track_average": ["--track-average"],
    "dba": ["--dba", "3"],
    "qe": ["--qe", "3", "--qe-alpha", "3"],
    "subtract": ["--subtract", "cam:0.5"],
    "camera_penalty": ["--camera-penalty", "1"],
    "rerank": ["--rerank", "--k1", "6", "--k2", "2"],
    "track_distance": ["--track-distance"],
    "track_expand": ["--track-expand"],
    "centroid": ["--centroid", "--centroid-group", "track"],
}


@pytest.fixture
def dummy_step():
    """A step registered by this test file alone (removed afterwards): scales the distances by ``factor``."""

    @register_step("dummy_scale", DISTANCES, 35, "test step: multiply the distances by factor",
                   factor=Param(float, 1.0, "multiplier", minimum=0, grid=(0.5, 2.0)))
    def _dummy(state, p):
        state.set_distances(state.distances() * p["factor"])

    yield "dummy_scale"
    STEPS.unregister("dummy_scale")


def test_a_registered_step_takes_its_place_in_the_canonical_order(dummy_step):
    assert canonical_order().index("dummy_scale") == canonical_order().index("rerank") + 1  # order 35 of its stage


def test_a_registered_step_is_listed_by_the_steps_command(dummy_step):
    listed = CliRunner().invoke(main, ["steps"]).output
    assert "dummy_scale  [distances]  test step" in listed and "factor: a number >= 0, default 1.0" in listed


def test_a_registered_step_gets_fuse_options(dummy_step):
    helped = CliRunner().invoke(main, ["fuse", "--help"]).output
    assert "--dummy-scale / --no-dummy-scale" in helped and "--dummy-scale-factor FLOAT" in helped


def test_a_registered_step_runs_from_its_options_in_order(case, tmp_path, dummy_step):
    fuse(case[0], tmp_path / "t.txt", "--track-distance", "--dummy-scale", "--dummy-scale-factor", "3", "--rerank")
    steps = json.loads((tmp_path / "t.txt.json").read_text())["steps"]
    assert [(s["name"], s["params"]) for s in steps][1:] == [("dummy_scale", {"factor": 3.0}), ("track_distance", {})]


@pytest.mark.parametrize("options, message", [
    (["--dummy-scale-factor", "3"], "add --dummy-scale"),
    (["--dummy-scale", "--dummy-scale-factor", "-1"], "expected a number >= 0, got -1"),
], ids=["parameter_without_the_step", "parameter_out_of_range"])
def test_a_registered_step_bad_options_are_usage_errors(case, tmp_path, dummy_step, options, message):
    assert message in fuse(case[0], tmp_path / "t.txt", *options, code=2).output


def test_a_registered_step_is_a_tune_axis(case, tmp_path, dummy_step):
    data, feats = case[0] / "data", case[0] / "feats"
    res = CliRunner().invoke(main, ["tune", "--models", "a,b", "--features-dir", str(feats), "--data-root", str(data),
                                    "--fusion", "concat", "--weight-grid", "1", "--dummy-scale",
                                    "--dummy-scale-factor-grid", "0.25,4", "--search", "grid",
                                    "--out", str(tmp_path / "p.yaml")])
    assert res.exit_code == 0, res.output
    tried = [line for line in res.output.splitlines() if line.startswith("trial")]
    assert len(tried) == 3 and "dummy_scale(factor=0.25)" in tried[1] and "dummy_scale(factor=4)" in tried[2]


def test_an_unregistered_step_takes_its_options_with_it(case, tmp_path, dummy_step):
    STEPS.unregister("dummy_scale")
    assert "--dummy-scale" not in CliRunner().invoke(main, ["fuse", "--help"]).output
    res = fuse(case[0], tmp_path / "t.txt", "--dummy-scale", code=2)
    assert "No such option '--dummy-scale'" in res.output


def test_a_step_name_is_registered_once(dummy_step):
    with pytest.raises(RegistryError, match="'dummy_scale' is registered twice"):
        register_step("dummy_scale", DISTANCES, 36, "another")(lambda state, p: None)


def test_unknown_step_names_get_close_matches():
    with pytest.raises(PipelineError, match="unknown step 'rerankk'; did you mean 'rerank'"):
        Step.make("rerankk")


def test_a_step_whose_option_name_is_taken_is_refused(case, tmp_path):
    """A step named like one of fuse's own options (--out) cannot silently shadow it."""
    register_step("out", DISTANCES, 90, "clashes with --out")(lambda state, p: None)
    try:
        res = fuse(case[0], tmp_path / "t.txt", code=1)
        assert "step 'out': option --out is already fuse's own option" in res.output
    finally:
        STEPS.unregister("out")


@pytest.mark.filterwarnings("ignore:k >= N:RuntimeWarning")  # metric-learn LFDA on a tiny train set
@pytest.mark.parametrize("name", list(STEP_OPTIONS))
def test_each_step_option_runs_its_step_and_changes_the_ranking(case, tmp_path, name):
    base, _ = case
    fuse(base, tmp_path / "plain.txt")
    fuse(base, tmp_path / "step.txt", *STEP_OPTIONS[name])
    steps = json.loads((tmp_path / "step.txt.json").read_text())["steps"]
    assert [s["name"] for s in steps] == [name]
    assert (tmp_path / "step.txt").read_text() != (tmp_path / "plain.txt").read_text()


def test_steps_command_lists_every_step_with_keys_and_defaults():
    res = CliRunner().invoke(main, ["steps"])
    assert res.exit_code == 0
    assert set(STEP_OPTIONS) == set(STEPS.names())  # the table above covers every built-in step
    for name, spec in STEPS.items():
        assert f"{name}  [" in res.output
        for key in spec.params:
            assert f"    {key}: " in res.output
    assert "k1: an integer >= 1, default 20" in res.output and "model: a string, required" in res.output
    assert "(tune tries 10, 20, 30)" in res.output


def test_step_options_run_in_data_flow_order(case, tmp_path):
    base, _ = case
    fuse(base, tmp_path / "t.txt", "--track-expand", "--rerank", "--qe", "2", "--dba", "2", "--track-average")
    steps = json.loads((tmp_path / "t.txt.json").read_text())["steps"]
    assert [s["name"] for s in steps] == ["track_average", "dba", "qe", "rerank", "track_expand"]


def test_metric_learning_without_training_features_names_the_file(case, tmp_path, ensemble_fakes):
    base, tree = case
    feats = tmp_path / "feats"
    ensemble_fakes.write_features(str(feats), dataclasses.replace(tree, train=[], t_pids=[]), {"a": 1.0})
    res = CliRunner().invoke(main, ["fuse", "--models", "a", "--features-dir", str(feats), "--data-root",
                                    str(base / "data"), "--out", str(tmp_path / "t.txt"), "--metric", "lfda"])
    assert res.exit_code == 1 and "train_a.pkl" in res.output


def test_concat_fusion_distance_is_the_weighted_sum_of_squared_model_distances():
    rng = np.random.default_rng(0)
    feats = {s: {m: rng.normal(size=(n, 5)).astype(np.float32) for m in "ab"} for s, n in (("query", 4), ("gallery", 6))}
    concat = make_blocks(["a", "b"], feats, {"a": 3, "b": 1}, "concat")
    dist = make_blocks(["a", "b"], feats, {"a": 3, "b": 1}, "distance")
    singles = [block_distance(make_blocks([m], feats), "query", "gallery") for m in "ab"]
    assert len(concat) == 1 and len(dist) == 2
    np.testing.assert_allclose(block_distance(concat, "query", "gallery") ** 2,
                               0.75 * singles[0] ** 2 + 0.25 * singles[1] ** 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(block_distance(dist, "query", "gallery"), 0.75 * singles[0] + 0.25 * singles[1],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weights, message", [({"a": 0, "b": 0}, "weight > 0"), ({"c": 1}, "'c'|c which")])
def test_make_blocks_refuses_bad_weights(weights, message):
    feats = {s: {m: np.zeros((n, 5), np.float32) for m in "ab"} for s, n in (("query", 4), ("gallery", 6))}
    with pytest.raises(FusionError, match=message):
        make_blocks(["a", "b"], feats, weights)


def test_pipeline_dict_round_trip_and_labels(tmp_path):
    pipe = Pipeline(["a", "b"], {"a": 2.0, "b": 0.5}, "distance", "euclidean",
                    [Step.make("qe", k=3), Step.make("rerank", k1=10, **{"lambda": 0.5})]).validate()
    path = tmp_path / "p.yaml"
    pipe.save(str(path), header="line one\nline two")
    assert path.read_text().startswith("# line one\n# line two\n")
    again = Pipeline.load(str(path))
    assert again == pipe
    assert again.steps[1].label() == "rerank(k1=10, k2=6, lambda=0.5)"
    with pytest.raises(PipelineError, match="listed twice"):
        Pipeline(["a", "a"]).validate()


def test_tune_grid_dedupes_equivalent_weights_and_refuses_grids_over_budget(case, tmp_path):
    from ensembles.tune import SearchSpace, grid_size

    base = Pipeline(["a", "b"], steps=[Step.make("rerank")])
    space = SearchSpace(weights=(0.5, 1.0), fusions=("concat",),
                        grids={("rerank", "k1"): (10, 20), ("rerank", "k2"): (6,), ("rerank", "lambda"): (0.3,)})
    assert grid_size(base, space) == 3 * 2  # (1, 1) is (0.5, 0.5) again
    data, feats = case[0] / "data", case[0] / "feats"
    res = CliRunner().invoke(main, ["tune", "--models", "a,b", "--features-dir", str(feats), "--data-root", str(data),
                                    "--search", "grid", "--budget", "5", "--out", str(tmp_path / "p.yaml")])
    assert res.exit_code == 1 and "grid has" in res.output and "--budget 5" in res.output
    assert not (tmp_path / "p.yaml").exists()


def test_foggy_queries_are_scored_on_their_own(tmp_path, ensemble_fakes):
    """Queries marked foggy="1" in query_label.xml get their own mAP column and JSON key, equal to
    evaluating the written submission on those queries alone."""
    from ensembles.inputs import labels_of, load_split_lists
    from post_processing.evaluation import evaluate_ranking
    from post_processing.submission import read_track2

    tree = ensemble_fakes.build_tree(str(tmp_path / "data"), foggy_every=3)
    ensemble_fakes.write_features(str(tmp_path / "feats"), tree, {"a": 1.0, "b": 1.2})
    res = fuse(tmp_path, tmp_path / "t.txt")
    assert "mAP foggy q" in res.output
    metrics = json.loads((tmp_path / "t.txt.json").read_text())
    labels = labels_of(load_split_lists(str(tmp_path / "data")))
    mask = labels.query_subsets["foggy"]
    assert mask.sum() == len(tree.query) // 3 and 0 < mask.sum() < len(mask)
    ranking = np.asarray(read_track2(str(tmp_path / "t.txt"), tree.gallery))
    want = evaluate_ranking(ranking[mask], labels.q_pids[mask], labels.g_pids, labels.q_camids[mask],
                            labels.g_camids)["mAP"]
    assert metrics["mAP_foggy"] == pytest.approx(want) and metrics["mAP_foggy"] != metrics["mAP"]
    assert all("mAP_foggy" in s for s in metrics["per_model"].values())


def test_rerank_after_camera_penalty_builds_cross_camera_neighbourhoods(case):
    """camera_aware (default) re-ranks with the penalty on same-camera q×q / g×g pairs too (diagonal
    kept); camera_aware false gives plain re-ranking of the penalised q×g distances."""
    from ensembles.inputs import load_inputs
    from ensembles.pipeline import State, run_pipeline
    from post_processing.rerank import re_ranking

    base, _ = case
    inputs = load_inputs(str(base / "feats"), str(base / "data"), ["a"])
    blocks = make_blocks(["a"], inputs.feats)
    lab = inputs.labels

    def run(aware):
        pipe = Pipeline.from_dict({"models": ["a"], "steps": [{"name": "camera_penalty", "penalty": 0.5},
                                                              {"name": "rerank", "k1": 6, "k2": 2,
                                                               "camera_aware": aware}]})
        state = State(blocks, lab)
        run_pipeline(pipe, state)
        return state.dist

    qg = block_distance(blocks, "query", "gallery", "euclidean")
    qq = block_distance(blocks, "query", "query", "euclidean")
    gg = block_distance(blocks, "gallery", "gallery", "euclidean")
    same_q, same_g = lab.q_camids[:, None] == lab.q_camids, lab.g_camids[:, None] == lab.g_camids
    qg_p = qg + 0.5 * (lab.q_camids[:, None] == lab.g_camids)
    qq_p = qq + 0.5 * (same_q & ~np.eye(len(qq), dtype=bool))
    gg_p = gg + 0.5 * (same_g & ~np.eye(len(gg), dtype=bool))
    np.testing.assert_allclose(run(True), re_ranking(qg_p, qq_p, gg_p, k1=6, k2=2), atol=1e-5)
    np.testing.assert_allclose(run(False), re_ranking(qg_p, qq, gg, k1=6, k2=2), atol=1e-5)
    assert not np.allclose(run(True), run(False), atol=1e-3)


OPTION_NAMES = {  # every option the hand-written CLI had: scripts and the README use them
    "fuse": ["--metric", "--pca-dim", "--track-average", "--track-weighting", "--dba", "--qe", "--qe-alpha",
             "--subtract", "--camera-penalty", "--rerank", "--no-rerank", "--k1", "--k2", "--lambda",
             "--track-distance", "--track-expand", "--topk", "--dense-rerank-max", "--pipeline", "--save-pipeline"],
    "tune": ["--rerank", "--k1", "--k1-grid", "--k2-grid", "--lambda-grid", "--weight-grid", "--fusions", "--budget"],
}


@pytest.mark.parametrize("command", list(OPTION_NAMES))
def test_generated_options_keep_the_historical_names(command):
    helped = CliRunner().invoke(main, [command, "--help"]).output
    words = {w.strip(",") for line in helped.splitlines() for w in line.split()}
    assert [n for n in OPTION_NAMES[command] if n not in words] == []


def test_the_command_line_sets_a_passive_openmp_wait_policy(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert CliRunner().invoke(main, ["steps"]).exit_code == 0
    assert os.environ["OMP_WAIT_POLICY"] == "passive"


@pytest.mark.parametrize("weights, message", [
    ({"a": -1}, "weight of 'a' must be a number >= 0, got -1"),
    ({"a": "1"}, "weight of 'a' must be a number >= 0, got '1'"),
    ({"a": True}, "weight of 'a' must be a number >= 0, got True"),
    ({"a": float("nan")}, "weight of 'a' must be a number >= 0, got nan"),
    ({"c": 1}, "weights given for 'c', not among the models (a, b)"),
    ({"a": 0, "b": 0}, "at least one model needs a weight > 0"),
])
def test_fusion_weights_are_checked_in_one_place(weights, message):
    from ensembles.fusion import check_weights

    with pytest.raises(FusionError, match=re.escape(message)):
        check_weights(["a", "b"], weights)
    with pytest.raises(PipelineError, match=re.escape(f"p.yaml: key 'weights': {message}")):
        Pipeline(["a", "b"], weights).validate("p.yaml")


def test_metric_step_fits_each_distinct_training_set_once_and_refits_on_other_data(monkeypatch):
    from ensembles.steps import metric
    from post_processing.metric_learning import MetricLearner

    fits = []
    real_fit = MetricLearner.fit

    def counting_fit(self, X, y):
        fits.append(len(X))
        return real_fit(self, X, y)

    monkeypatch.setattr(MetricLearner, "fit", counting_fit)
    monkeypatch.setattr(metric, "_FITTED", type(metric._FITTED)())
    rng = np.random.default_rng(0)
    train, pids = rng.normal(size=(60, 12)).astype(np.float32), np.repeat(np.arange(12), 5)
    p = {"method": "lfda", "pca_dim": 6, "params": {}}
    first = metric._fitted(train, pids, p)
    again = metric._fitted(train.copy(), pids.copy(), dict(p))
    assert again is first and fits == [60]
    fresh = MetricLearner("lfda", pca_dim=6).fit(train, pids)
    assert np.array_equal(fresh.transform(train), first.transform(train))  # what a refit would give
    metric._fitted(train[:-5], pids[:-5], p)
    metric._fitted(train, pids, {**p, "pca_dim": 5})
    other = train.copy()
    other[0, 0] += 1
    metric._fitted(other, pids, p)
    assert fits == [60, 60, 55, 60, 60]
    for i in range(metric._FITTED_MAX + 2):
        metric._fitted(train, pids, {**p, "pca_dim": 1 + i % 12})
    assert len(metric._FITTED) <= metric._FITTED_MAX
