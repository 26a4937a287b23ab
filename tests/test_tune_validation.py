"""`ensemble tune --split val`: coordinate ascent on the validation split only, its pipeline and
validation table round-trip through `fuse --pipeline` on the test split."""
import os

import numpy as np
import pytest

from ensembles.inputs import load_inputs, load_split_lists
from ensembles.pipeline import Pipeline
from ensembles.run import metrics_json, run_ensemble
from ensembles.tune import ascend
from post_processing.features import save_features

NOISE = {"a": 0.8, "b": 1.0, "c": 3.0}
SMALL = (("camera_penalty", ({"penalty": 0.3},)), ("qe", ({"k": 1}, {"k": 2, "alpha": 3.0})),
         ("rerank", ({"k1": 6, "k2": 3, "lambda": 0.3},)))


@pytest.fixture(scope="module")
def data(tmp_path_factory, ensemble_fakes):
    """A tree with 24 test ids and 20 training ids (6 held out for validation), and val + test features:
    id prototypes shared by all splits plus per-model noise."""
    root = str(tmp_path_factory.mktemp("tune_tree"))
    tree = ensemble_fakes.build_tree(root, n_ids=24, per_id=5, n_cams=4, train_ids=20)
    feats = str(tmp_path_factory.mktemp("tune_feats"))
    ensemble_fakes.write_features(feats, tree, NOISE)
    val = load_split_lists(root, split="val", val_ids=6, val_seed=0)
    rng = np.random.default_rng(1)
    protos = {m: rng.normal(size=(60, 16)).astype(np.float32) for m in NOISE}
    for m, sigma in NOISE.items():
        for side, recs in (("val_query", val.query), ("val_gallery", val.gallery)):
            pids = np.array([r.pid for r in recs])
            save_features(os.path.join(feats, f"{side}_{m}.pkl"), [r.name for r in recs],
                          protos[m][pids] + sigma * rng.normal(size=(len(recs), 16)).astype(np.float32))
    return {"root": root, "features": feats}


def _val_only(data, tmp_path):
    """A copy of the feature folder without any test feature file."""
    only = tmp_path / "val_only"
    only.mkdir()
    for name in os.listdir(data["features"]):
        if name.startswith("val_"):
            os.link(os.path.join(data["features"], name), only / name)
    return str(only)


def test_tune_on_val_never_reads_test_features(data, tmp_path):
    features = _val_only(data, tmp_path)
    inputs = load_inputs(features, data["root"], list(NOISE), split="val", val_ids=6, val_seed=0)
    result = ascend(inputs, list(NOISE), budget=40, candidates=SMALL)
    assert result.trials <= 40
    labels = [r["label"] for r in result.table]
    assert labels[:3] == ["model a", "model b", "model c"] and any(r["stage"] == "fusion" for r in result.table)
    assert {r["label"].split("(")[0] for r in result.table if r["stage"] == "step"} == {
        "+ camera_penalty", "+ qe", "+ rerank"}
    kept = [r for r in result.table if r["stage"] == "step" and r["kept"]]
    assert [s.name for s in result.pipeline.steps] == [r["label"][2:].split("(")[0] for r in kept]
    for r in result.table:
        if r["stage"] == "step":
            assert r["kept"] == (r["gain"] >= 0.001)
    with pytest.raises(Exception, match="no query_a.pkl"):
        load_inputs(features, data["root"], ["a"])


def test_the_chosen_pipeline_round_trips_through_fuse_on_test(data, tmp_path):
    inputs = load_inputs(data["features"], data["root"], list(NOISE), split="val", val_ids=6, val_seed=0)
    result = ascend(inputs, list(NOISE), budget=30, candidates=SMALL)
    chosen = result.pipeline
    chosen.validation = {"split": "val", "rows": result.table}
    path = str(tmp_path / "pipeline.yaml")
    chosen.save(path)
    loaded = Pipeline.load(path)
    assert loaded.to_dict() == chosen.to_dict()
    test = load_inputs(data["features"], data["root"], loaded.models)
    fused = run_ensemble(test, loaded, topk=20)
    doc = metrics_json(fused, loaded, test, 20, "track2.txt")
    assert doc["validation"]["rows"][0]["label"] == "model a"
    assert doc["pipeline"]["steps"] == chosen.to_dict()["steps"] and "validation" not in doc["pipeline"]
    assert doc["per_model"].keys() == set(loaded.models) and len(doc["steps"]) == len(loaded.steps)


def _cli(*args):
    from click.testing import CliRunner

    from ensembles.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_cli_tunes_on_val_without_test_files_and_fuse_applies_it_to_test(data, tmp_path):
    import json

    features = _val_only(data, tmp_path)
    pipeline = tmp_path / "pipeline.yaml"
    out = _cli("tune", "--split", "val", "--val-ids", 6, "--search", "ascent", "--models", "a,b,c",
               "--features-dir", features, "--data-root", data["root"], "--budget", 30, "--topk", 10,
               "--camera-penalty", 0.3, "--qe", 2, "--out", pipeline)
    assert "validation table (val split" in out and "+ qe(k=2)" in out
    chosen = Pipeline.load(str(pipeline))
    assert chosen.validation["split"] == "val" and chosen.validation["val_ids"] == 6
    for name in os.listdir(features):  # the test split's files are back
        os.unlink(os.path.join(features, name))
    for name in os.listdir(data["features"]):
        os.link(os.path.join(data["features"], name), os.path.join(features, name))
    metrics = tmp_path / "metrics.json"
    out = _cli("fuse", "--pipeline", pipeline, "--features-dir", features, "--data-root", data["root"],
               "--topk", 20, "--out", tmp_path / "track2.txt", "--metrics-out", metrics)
    doc = json.loads(metrics.read_text())
    assert doc["validation"]["rows"] == chosen.validation["rows"]
    assert doc["pipeline"]["models"] == chosen.models and "(test split)" in out
    dropped = [r["label"] for r in chosen.validation["rows"] if r["stage"] == "step" and not r["kept"]]
    assert [d["label"] for d in doc["dropped_steps"]] == dropped


def test_cli_ascent_without_training_features_says_metric_learning_was_not_tried(data, tmp_path):
    features = _val_only(data, tmp_path)
    pipeline = tmp_path / "pipeline.yaml"
    out = _cli("tune", "--split", "val", "--val-ids", 6, "--search", "ascent", "--models", "a,b",
               "--features-dir", features, "--data-root", data["root"], "--budget", 40, "--out", pipeline)
    assert "the steps that learn on the training features are not tried" in out
    rows = Pipeline.load(str(pipeline)).validation["rows"]
    assert {"label": "metric", "kept": False} in [{"label": r["label"], "kept": r["kept"]} for r in rows]
    tried = {r["label"].split("(")[0] for r in rows if r["stage"] == "step" and r["scores"]}
    assert tried == {"+ camera_penalty", "+ dba", "+ qe", "+ rerank", "+ track_distance"}


def test_the_ascent_records_the_cross_validation_that_set_the_weights(data):
    inputs = load_inputs(data["features"], data["root"], list(NOISE), split="val", val_ids=6, val_seed=0)
    result = ascend(inputs, list(NOISE), budget=40, candidates=(), cv_splits=20, seed=3)
    fusion = next(r for r in result.table if r["stage"] == "fusion")
    cv = fusion["cross_validation"]
    assert cv["splits"] == 20 and cv["seed"] == 3 and set(cv["held_out"]) == {"equal", "ascent"}
    assert cv["chosen"] == max(cv["held_out"], key=lambda p: (cv["held_out"][p], p == "equal"))
    assert f"{100 * cv['held_out']['equal']:.2f}" in fusion["why"]
    if cv["chosen"] == "equal":
        assert set(result.pipeline.weights.values()) == {1.0} and result.pipeline.fusion == "concat"
    untuned = ascend(inputs, list(NOISE), budget=40, candidates=(), cv_splits=0)
    fusion0 = next(r for r in untuned.table if r["stage"] == "fusion")
    assert "cross_validation" not in fusion0 and fusion0["why"].startswith("best fusion method and weights")
    if cv["chosen"] == "ascent":
        assert result.pipeline.to_dict() == untuned.pipeline.to_dict()


def test_cli_cv_splits_belongs_to_the_ascent(data, tmp_path):
    from click.testing import CliRunner

    from ensembles.cli import main

    res = CliRunner().invoke(main, ["tune", "--models", "a,b", "--features-dir", data["features"], "--data-root",
                                    data["root"], "--cv-splits", "5", "--out", str(tmp_path / "p.yaml")])
    assert res.exit_code == 2 and "--cv-splits belongs to --search ascent" in res.output
