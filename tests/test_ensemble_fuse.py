"""`ensemble fuse` / `validate` / `evaluate` / `tune` on a small AIC-layout tree with three fake models."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from ensembles.cli import main
from post_processing.errors import ReidError, ReidUsageError

NOISE = {"a": 1.0, "b": 1.1, "c": 1.2}


@pytest.fixture(scope="module")
def case(tmp_path_factory, ensemble_fakes):
    base = tmp_path_factory.mktemp("ens")
    tree = ensemble_fakes.build_tree(str(base / "data"))
    ensemble_fakes.write_features(str(base / "feats"), tree, NOISE)
    return base, tree


def run(*args, ok=True, code=1):
    """The command's result; ``ok=False``: it must fail with exit status ``code`` and no traceback."""
    res = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert res.exit_code == 0, res.output + repr(res.exception)
    else:
        assert res.exit_code == code, res.output + repr(res.exception)
        assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    return res


def fuse_args(base, out, *extra, models="a,b,c"):
    return ["fuse", "--models", models, "--features-dir", base / "feats", "--data-root", base / "data",
            "--out", out, *extra]


@pytest.fixture(scope="module")
def fused(case, tmp_path_factory):
    """One ``fuse`` run of three models with every kind of step: its output, submission and metrics."""
    base, _ = case
    tmp = tmp_path_factory.mktemp("fused")
    out, metrics = tmp / "track2.txt", tmp / "metrics.json"
    res = run(*fuse_args(base, out, "--metrics-out", metrics, "--dba", "2", "--qe", "2", "--rerank", "--k1", "6",
                         "--k2", "2", "--track-expand"))
    return {"output": res.output, "out": out, "metrics": json.loads(metrics.read_text()), "tmp": tmp}


def test_fuse_reports_each_model_the_fusion_and_the_steps(fused):
    assert "model a" in fused["output"] and "fusion concat" in fused["output"] and "+ rerank(k1=6" in fused["output"]


def test_fuse_reports_the_fusion_gain_over_the_best_model(fused):
    fusion_line = next(line for line in fused["output"].splitlines() if line.startswith("fusion concat"))
    assert fusion_line.split()[-1].startswith("+")  # its mAP gain over the best single model


def test_fuse_writes_a_valid_submission(case, fused):
    base, tree = case
    lines = fused["out"].read_text().splitlines()
    assert len(lines) == len(tree.query) and all(len(line.split()) == 100 for line in lines)
    run("validate", fused["out"], "--data-root", base / "data")


def test_fuse_metrics_list_the_models_and_steps(fused):
    m = fused["metrics"]
    assert set(m["per_model"]) == {"a", "b", "c"}
    assert [s["name"] for s in m["steps"]] == ["dba", "qe", "rerank", "track_expand"]
    assert m["mAP"] == m["steps"][-1]["mAP"] and m["cmc"] == m["steps"][-1]["cmc"]


def test_fusion_beats_every_single_model(fused):
    m = fused["metrics"]
    assert m["fusion"]["mAP"] > max(s["mAP"] for s in m["per_model"].values())


def test_fuse_metrics_equal_evaluate_on_its_submission(case, fused):
    scored = fused["tmp"] / "scores.json"
    run("evaluate", fused["out"], "--data-root", case[0] / "data", "--json-out", scored)
    e = json.loads(scored.read_text())
    for key in ("mAP", "aic_map", "mINP", "rank1", "rank5", "rank10", "cmc"):
        assert e[key] == fused["metrics"][key], key


def test_features_are_aligned_by_name_not_position(case, tmp_path, ensemble_fakes):
    base, tree = case
    ensemble_fakes.write_features(str(tmp_path / "feats"), tree, NOISE, shuffle=False)
    run("fuse", "--models", "a,b,c", "--features-dir", tmp_path / "feats", "--data-root", base / "data",
        "--out", tmp_path / "sorted.txt")
    run(*fuse_args(base, tmp_path / "shuffled.txt"))
    assert (tmp_path / "sorted.txt").read_text() == (tmp_path / "shuffled.txt").read_text()


def test_single_model_distance_fusion_equals_concat_and_weights_change_the_result(case, tmp_path):
    base, _ = case
    run(*fuse_args(base, tmp_path / "c.txt", "--fusion", "concat", models="a"))
    run(*fuse_args(base, tmp_path / "d.txt", "--fusion", "distance", models="a"))
    assert (tmp_path / "c.txt").read_text() == (tmp_path / "d.txt").read_text()
    run(*fuse_args(base, tmp_path / "w1.txt", "--weights", "1,0,0"))
    assert (tmp_path / "w1.txt").read_text() == (tmp_path / "c.txt").read_text()
    run(*fuse_args(base, tmp_path / "w2.txt", "--weights", "a=1,b=1,c=0"))
    assert (tmp_path / "w2.txt").read_text() != (tmp_path / "c.txt").read_text()


def test_missing_model_error_lists_the_models_that_exist(case, tmp_path):
    base, _ = case
    res = run(*fuse_args(base, tmp_path / "t.txt", models="a,zzz"), ok=False)
    assert "query_zzz" in res.output and "a, b, c" in res.output
    assert not (tmp_path / "t.txt").exists()


def test_differing_name_sets_error_lists_first_missing_names(case, tmp_path, ensemble_fakes):
    from post_processing.features import load_features, save_features

    base, tree = case
    feats = tmp_path / "feats"
    ensemble_fakes.write_features(str(feats), tree, NOISE)
    g = load_features(str(feats / "gallery_b.pkl"))
    drop = {tree.gallery[5], tree.gallery[9]}
    keep = [i for i, n in enumerate(g.names) if n not in drop]
    save_features(str(feats / "gallery_b.pkl"), [g.names[i] for i in keep], g.feats[keep])
    res = run("fuse", "--models", "a,b", "--features-dir", feats, "--data-root", base / "data",
              "--out", tmp_path / "t.txt", ok=False)
    assert "'b'" in res.output and "2 missing" in res.output
    assert all(n in res.output for n in drop)


@pytest.mark.parametrize("yaml_text, expected", [
    ("steps:\n  - name: rerank\n    k3: 1\n", ["step 1", "'rerank'", "unknown key 'k3'", "k1, k2, lambda"]),
    ("steps:\n  - name: qe\n    k: 2\n  - name: rerankk\n", ["step 2", "unknown step 'rerankk'", "did you mean 'rerank'"]),
    ("steps:\n  - name: rerank\n    k1: abc\n", ["step 1 'rerank'", "key 'k1'", "integer >= 1", "'abc'"]),
    ("steps:\n  - name: rerank\n    lambda: 2\n", ["key 'lambda'", "in [0, 1]", "got 2"]),
    ("steps:\n  - {name: rerank}\n  - {name: qe, k: 3}\n", ["step 2 'qe'", "after step 1 'rerank'"]),
    ("steps:\n  - {k: 3}\n", ["step 1", "missing key 'name'"]),
    ("fusion: sum\n", ["key 'fusion'", "concat, distance"]),
    ("weights: {a: -1}\n", ["key 'weights'", "'a'", ">= 0"]),
    ("stepz: []\n", ["unknown key 'stepz'", "models, weights"]),
    ("steps:\n  - name: qe\n   k: 3\n", ["line 3", "not valid YAML"]),
])
def test_malformed_pipeline_yaml_names_step_and_key(case, tmp_path, yaml_text, expected):
    base, _ = case
    pipe = tmp_path / "pipe.yaml"
    pipe.write_text(yaml_text)
    res = run(*fuse_args(base, tmp_path / "t.txt", "--pipeline", pipe), ok=False)
    assert str(pipe) in res.output
    for text in expected:
        assert text in res.output, (text, res.output)


def test_pipeline_and_step_options_are_exclusive(case, tmp_path):
    base, _ = case
    pipe = tmp_path / "pipe.yaml"
    pipe.write_text("steps: [rerank]\n")
    res = run(*fuse_args(base, tmp_path / "t.txt", "--pipeline", pipe, "--qe", "3"), ok=False, code=2)
    assert "do not combine it with step options (--qe)" in res.output


@pytest.mark.parametrize("extra, expected", [
    (["--k1", "0"], ["--rerank-k1", "expected an integer >= 1, got 0"]),
    (["--rerank", "--lambda", "2"], ["--lambda", "in [0, 1], got 2.0"]),
    (["--subtract", "cam:x"], ["--subtract", "WEIGHT: expected a number >= 0, got 'x'"]),
    (["--track-average", "--track-weighting", "foo"], ["one of mean, inverse_distance, pairwise, got 'foo'"]),
    (["--k2", "3"], ["--rerank-k2 sets a parameter of step 'rerank'; add --rerank"]),
    (["--weights", "1,2"], ["--weights", "has 2 values for 3 models"]),
])
def test_bad_step_options_are_usage_errors_naming_the_option(case, tmp_path, extra, expected):
    base, _ = case
    res = run(*fuse_args(base, tmp_path / "t.txt", *extra), ok=False, code=2)
    for text in expected:
        assert text in res.output, (text, res.output)


@pytest.mark.parametrize("exc, code", [(ReidError("bad input"), 1), (ReidUsageError("bad usage"), 2)])
def test_project_errors_are_one_line_with_their_exit_status(case, tmp_path, monkeypatch, exc, code):
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr("ensembles.run.run_ensemble", fail)
    res = run(*fuse_args(case[0], tmp_path / "t.txt"), ok=False, code=code)
    assert f"error: {exc}" in res.output


def test_a_programming_error_keeps_its_traceback(case, tmp_path, monkeypatch):
    def bug(*args, **kwargs):
        raise ValueError("shape bug")

    monkeypatch.setattr("ensembles.run.run_ensemble", bug)
    res = CliRunner().invoke(main, [str(a) for a in fuse_args(case[0], tmp_path / "t.txt")])
    assert isinstance(res.exception, ValueError) and "error:" not in res.output


def test_existing_out_is_kept_when_the_run_fails(case, tmp_path, ensemble_fakes):
    base, tree = case
    nogt = tmp_path / "nogt"
    ensemble_fakes.build_tree(str(nogt), ground_truth=False)
    out = tmp_path / "track2.txt"
    out.write_text("previous\n")
    res = run("fuse", "--models", "a,b", "--features-dir", base / "feats", "--data-root", nogt, "--out", out,
              "--camera-penalty", "1", ok=False)
    assert "camera_penalty" in res.output and "camera ids" in res.output
    assert out.read_text() == "previous\n"
    assert sorted(os.listdir(tmp_path)) == ["nogt", "track2.txt"]  # no temporary left behind


def test_without_ground_truth_writes_submission_and_null_metrics(case, tmp_path, ensemble_fakes):
    base, tree = case
    nogt = tmp_path / "nogt"
    ensemble_fakes.build_tree(str(nogt), ground_truth=False)
    out, metrics = tmp_path / "t.txt", tmp_path / "m.json"
    res = run("fuse", "--models", "a,b", "--features-dir", base / "feats", "--data-root", nogt, "--out", out,
              "--metrics-out", metrics, "--track-expand")
    assert "no ground truth" in res.output
    run("validate", out, "--data-root", nogt)
    m = json.loads(metrics.read_text())
    assert m["mAP"] is None and m["has_ground_truth"] is False and m["steps"][0]["name"] == "track_expand"
    res = run("evaluate", out, "--data-root", nogt, ok=False)
    assert "no ground truth" in res.output


def test_validate_reports_problems_with_line_numbers(case, tmp_path):
    base, tree = case
    bad = tmp_path / "bad.txt"
    good = " ".join(str(i) for i in range(1, 101))
    bad.write_text("\n".join([good] * (len(tree.query) - 1) + ["1 2 3"]) + "\n")
    res = run("validate", bad, "--data-root", base / "data", ok=False)
    assert f"bad.txt:{len(tree.query)}:" in res.output and "3 entries, expected 100" in res.output


def test_tune_writes_a_pipeline_fuse_accepts_with_the_reported_score(case, tmp_path):
    base, _ = case
    best = tmp_path / "best.yaml"
    res = run("tune", "--models", "a,b,c", "--features-dir", base / "feats", "--data-root", base / "data",
              "--rerank", "--k1", "6", "--k2", "2", "--weight-grid", "0.5,1", "--k1-grid", "4,8", "--k2-grid", "2",
              "--lambda-grid", "0.3", "--budget", "6", "--out", best)
    assert "trial   6/6" in res.output
    text = best.read_text()
    assert text.startswith("# written by `ensemble tune`")
    words = text.splitlines()[1].replace("(", " ").replace(")", " ").split()
    tuned_map, base_map = float(words[2]) / 100, float(words[5]) / 100
    assert tuned_map >= base_map
    metrics = tmp_path / "m.json"
    run("fuse", "--pipeline", best, "--features-dir", base / "feats", "--data-root", base / "data",
        "--out", tmp_path / "t.txt", "--metrics-out", metrics)
    m = json.loads(metrics.read_text())
    assert m["pipeline"]["steps"][0]["name"] == "rerank" and m["pipeline"]["steps"][0]["k1"] in (4, 6, 8)
    assert m["mAP"] == pytest.approx(tuned_map, abs=1e-4)


def test_topk_rerank_mode_for_large_galleries_gives_a_valid_ranking(case, tmp_path):
    base, _ = case
    out = tmp_path / "t.txt"
    res = run(*fuse_args(base, out, "--rerank", "--k1", "6", "--k2", "2", "--dense-rerank-max", "10"))
    assert "top-100 re-ranking from features" in res.output
    run("validate", out, "--data-root", base / "data")
    dense = tmp_path / "dense.txt"
    run(*fuse_args(base, dense, "--rerank", "--k1", "6", "--k2", "2"))
    first = [line.split()[0] for line in out.read_text().splitlines()]
    first_dense = [line.split()[0] for line in dense.read_text().splitlines()]
    assert np.mean([a == b for a, b in zip(first, first_dense)]) > 0.8
