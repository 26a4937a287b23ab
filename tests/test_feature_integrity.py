"""Feature files that belong together stay together (issue 18, items 1 and 12).

`extract` replaces a model's split files together and records the model's fingerprint and the
images it skipped; `ensemble fuse` refuses a model whose files come from different checkpoints or
configs; `extract_feature_val.sh` replaces no model unless all succeeded; commands that need query
and gallery only never read the training labels or images.
"""
import logging
import os
import pickle
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from ensembles.cli import main as ensemble
from ensembles.inputs import load_inputs
from global_model.cli import main as global_model
from post_processing.features import FeatureFileError, load_features, save_features

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CONFIG = os.path.join(REPO, "global_model", "configs", "tiny_cpu.yml")
# A checkpoint in seconds: the tiny config shrunk to 48x64 images and two training steps.
QUICK = ["INPUT.SIZE_TRAIN", "[48, 64]", "INPUT.SIZE_TEST", "[48, 64]", "INPUT.PADDING", "4",
         "SOLVER.IMS_PER_BATCH", "16", "SOLVER.ITERS_PER_EPOCH", "2", "SOLVER.MAX_EPOCHS", "1",
         "SOLVER.WARMUP_EPOCHS", "0", "SOLVER.EVAL_PERIOD", "0", "DATALOADER.NUM_WORKERS", "0",
         "TEST.IMS_PER_BATCH", "64"]
TOPK = "20"  # the dataset's gallery has fewer than a submission's 100 images


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """``root`` (a small AIC20-layout dataset with ground truth), ``ckpt`` and ``feats`` (its query,
    gallery and train features, extracted once; read-only)."""
    from global_model.config import load_config
    from global_model.data.synth import generate
    from global_model.engine.trainer import build_trainer

    base = tmp_path_factory.mktemp("integrity")
    root, out, feats = str(base / "data"), str(base / "run"), str(base / "feats")
    generate(root, seed=0, ids=16, size=(48, 64), cameras=3, real_ids=0)
    build_trainer(load_config(CONFIG, [*QUICK, "DATASETS.ROOT", root, "OUTPUT_DIR", out]), progress=False).train()
    ckpt = os.path.join(out, "model_final.pth")
    assert extract(ckpt, root, feats, "--split", "all") == 0
    return {"root": root, "ckpt": ckpt, "feats": feats}


def extract(ckpt, root, out, *more):
    return global_model(["extract", "--checkpoint", ckpt, "--data-root", root, "--out-dir", out, "--name", "m",
                         "--no-progress", *more])


def fuse(feats, root, tmp_path, *more):
    return CliRunner().invoke(ensemble, ["fuse", "--models", "m", "--features-dir", feats, "--data-root", root,
                                         "--out", str(tmp_path / "track2.txt"), "--topk", TOPK, *more])


def copy_tree(src, dst, skip=()):
    shutil.copytree(src, dst, ignore=lambda folder, names: [n for n in names if n in skip])
    return str(dst)


def first_name(root, listing):
    with open(os.path.join(root, listing)) as f:
        return f.readline().strip()


def corrupt(root, folder, name):
    with open(os.path.join(root, folder, name), "wb") as f:
        f.write(b"not an image")


def read(path):
    with open(path, "rb") as f:
        return f.read()


# --- item 1: the fingerprint, in a file old tools still read --------------------------------------

@pytest.mark.parametrize("suffix", [".pkl", ".npz"])
def test_metadata_rides_along_and_plain_readers_see_the_old_format(tmp_path, suffix):
    names, feats = ["a.jpg", "b.jpg"], np.array([[1, 0], [0, 1]], np.float32)
    path = str(tmp_path / f"query_m{suffix}")
    save_features(path, names, feats, {"fingerprint": "0123abcd", "skipped": ["c.jpg"]})
    fs = load_features(path)
    assert fs.names == names and fs.fingerprint == "0123abcd" and fs.skipped == ["c.jpg"]
    np.testing.assert_array_equal(fs.feats, feats)
    if suffix == ".pkl":
        with open(path, "rb") as f:
            plain = pickle.load(f)  # what other tools do: the same dict as before, nothing else
        assert list(plain) == names and all(np.array_equal(plain[n], v) for n, v in zip(names, feats))
        old = str(tmp_path / "old.pkl")
        save_features(old, names, feats)
        assert read(path).startswith(read(old))  # the feature dict's bytes are unchanged
    else:
        with np.load(path) as z:
            assert str(z["fingerprint"]) == "0123abcd"


def test_extract_records_the_fingerprint_and_keeps_the_vectors(model, tmp_path):
    from global_model.data.dataset import build_test_records
    from global_model.engine.extractor import extract_features, load_model_from_checkpoint, prepare_for_inference

    fps = {split: load_features(os.path.join(model["feats"], f"{split}_m.pkl")) for split in ("query", "gallery")}
    assert fps["query"].fingerprint and fps["query"].fingerprint == fps["gallery"].fingerprint
    assert fps["query"].meta["checkpoint"] == model["ckpt"] and fps["query"].skipped == []
    net, cfg = load_model_from_checkpoint(model["ckpt"])
    net = prepare_for_inference(net, bool(cfg.MODEL.CHANNELS_LAST), inplace=True)
    names, feats = extract_features(net, build_test_records(cfg, model["root"])["query"], cfg, progress=False)
    assert fps["query"].names == names
    np.testing.assert_array_equal(fps["query"].feats, feats)  # metadata added, vectors identical


def test_a_failing_gallery_replaces_no_file(model, tmp_path):
    """The gallery fails after the query was extracted: the earlier query file stays, no temp file."""
    out = copy_tree(model["feats"], tmp_path / "feats")
    before = {f: read(os.path.join(out, f)) for f in os.listdir(out)}
    root = copy_tree(model["root"], tmp_path / "data")
    corrupt(root, "image_test", first_name(root, "name_test.txt"))
    assert extract(model["ckpt"], root, out, "TEST.FLIP", "False") == 1
    assert {f: read(os.path.join(out, f)) for f in os.listdir(out)} == before


def test_fuse_refuses_query_and_gallery_of_different_extractions(model, tmp_path):
    out = copy_tree(model["feats"], tmp_path / "feats")
    assert extract(model["ckpt"], model["root"], out, "--split", "query", "TEST.FLIP", "False") == 0
    res = fuse(out, model["root"], tmp_path)
    assert res.exit_code == 1, res.output
    assert "fingerprints differ" in res.output
    assert os.path.join(out, "query_m.pkl") in res.output and os.path.join(out, "gallery_m.pkl") in res.output
    assert not (tmp_path / "track2.txt").exists()


def test_files_without_fingerprint_load_with_a_warning(model, tmp_path, caplog):
    out = str(tmp_path / "feats")
    for split in ("query", "gallery"):
        fs = load_features(os.path.join(model["feats"], f"{split}_m.pkl"))
        save_features(os.path.join(out, f"{split}_m.pkl"), fs.names, fs.feats)  # as older extracts wrote them
    with caplog.at_level(logging.WARNING, logger="ensembles.inputs"):
        inputs = load_inputs(out, model["root"], ["m"])
    assert inputs.feats["query"]["m"].shape[0] > 0
    assert "no fingerprint" in caplog.text and "query_m.pkl" in caplog.text and "gallery_m.pkl" in caplog.text


def test_extract_script_replaces_no_model_unless_all_succeed(model, tmp_path):
    import subprocess
    import sys

    feats = tmp_path / "features"
    feats.mkdir()
    (feats / "query_a.pkl").write_bytes(b"earlier a")
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=REPO, DATA_ROOT=model["root"], FEATURES_DIR=str(feats),
               MODELS=f"a::{model['ckpt']} b:{tmp_path}/missing.yml:{model['ckpt']}")
    res = subprocess.run(["sh", os.path.join(REPO, "scripts", "extract_feature_val.sh")], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "b: extraction failed" in res.stderr
    assert sorted(os.listdir(feats)) == ["query_a.pkl"] and (feats / "query_a.pkl").read_bytes() == b"earlier a"
    assert sorted(os.listdir(tmp_path)) == ["features"]  # the staging folder is gone


# --- item 12: commands read only the files they use ------------------------------------------------

def test_broken_training_labels_do_not_stop_fuse_validate_evaluate(model, tmp_path):
    root = copy_tree(model["root"], tmp_path / "data", skip=("image_train", "image_query", "image_test"))
    with open(os.path.join(root, "train_label.xml"), "w") as f:
        f.write("<TrainingImages><Items><Item imageName=")
    res = fuse(model["feats"], root, tmp_path)
    assert res.exit_code == 0, res.output
    track2 = str(tmp_path / "track2.txt")
    for command in (["validate", track2, "--data-root", root, "--topk", TOPK],
                    ["evaluate", track2, "--data-root", root, "--topk", TOPK]):
        res = CliRunner().invoke(ensemble, command)
        assert res.exit_code == 0, (command, res.output)


def test_extract_query_gallery_without_training_set(model, tmp_path):
    root = copy_tree(model["root"], tmp_path / "data", skip=("image_train", "train_label.xml"))
    out = str(tmp_path / "feats")
    assert extract(model["ckpt"], root, out) == 0
    assert sorted(os.listdir(out)) == ["gallery_m.pkl", "query_m.pkl"]
    np.testing.assert_array_equal(load_features(os.path.join(out, "query_m.pkl")).feats,
                                  load_features(os.path.join(model["feats"], "query_m.pkl")).feats)
    assert extract(model["ckpt"], root, str(tmp_path / "train"), "--split", "train") == 1
    assert not os.path.exists(tmp_path / "train")


def test_skipped_gallery_image_is_named_by_fuse(model, tmp_path):
    root = copy_tree(model["root"], tmp_path / "data")
    bad = first_name(root, "name_test.txt")
    corrupt(root, "image_test", bad)
    out = str(tmp_path / "feats")
    assert extract(model["ckpt"], root, out, "DATASETS.SKIP_BAD", "True") == 0
    assert load_features(os.path.join(out, "gallery_m.pkl")).skipped == [bad]
    res = fuse(out, root, tmp_path)
    assert res.exit_code == 1
    assert "gallery_m.pkl: extraction skipped 1 unreadable gallery image(s) (DATASETS.SKIP_BAD)" in res.output
    assert bad in res.output


def test_skipped_training_image_is_left_out_of_metric_learning(model, tmp_path, caplog):
    root = copy_tree(model["root"], tmp_path / "data")
    bad = first_name(root, "name_train.txt")
    corrupt(root, "image_train", bad)
    out = str(tmp_path / "feats")
    assert extract(model["ckpt"], root, out, "--split", "all", "DATASETS.SKIP_BAD", "True") == 0
    with caplog.at_level(logging.WARNING, logger="ensembles.inputs"):
        inputs = load_inputs(out, root, ["m"], train=True)
    assert bad not in [r.name for r in inputs.dataset.train]
    assert len(inputs.labels.train_pids) == len(inputs.feats["train"]["m"]) == len(inputs.dataset.train)
    assert any(bad in n and "SKIP_BAD" in n for n in inputs.notes) and bad in caplog.text
    res = fuse(out, root, tmp_path, "--metric", "lfda", "--pca-dim", "16")
    assert res.exit_code == 0, res.output


def test_mixed_files_are_refused_by_the_loader(tmp_path):
    """The check itself, without a model: one model's query/gallery/train fingerprints must agree."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "name_query.txt").write_text("q1.jpg\nq2.jpg\n")
    (root / "name_test.txt").write_text("g1.jpg\ng2.jpg\ng3.jpg\n")
    feats = str(tmp_path / "feats")
    rng = np.random.default_rng(0)
    for split, names, fp in (("query", ["q1.jpg", "q2.jpg"], "aaaa"),
                             ("gallery", ["g1.jpg", "g2.jpg", "g3.jpg"], "bbbb")):
        save_features(os.path.join(feats, f"{split}_m.pkl"), names, rng.random((len(names), 4)) + 0.1,
                      {"fingerprint": fp, "checkpoint": f"{fp}.pth"})
    with pytest.raises(FeatureFileError, match="fingerprints differ") as err:
        load_inputs(feats, str(root), ["m"])
    assert "query_m.pkl: aaaa (checkpoint aaaa.pth)" in str(err.value)
    assert "gallery_m.pkl: bbbb (checkpoint bbbb.pth)" in str(err.value)


def test_files_written_together_replace_nothing_when_one_fails(tmp_path):
    from post_processing.features import save_feature_files

    query, gallery = str(tmp_path / "query_m.pkl"), str(tmp_path / "gallery_m.pkl")
    for path in (query, gallery):
        save_features(path, ["old.jpg"], [[1.0, 0.0]])
    before = {p: read(p) for p in (query, gallery)}
    with pytest.raises(FeatureFileError, match="duplicate image names"):
        save_feature_files([(query, ["q.jpg"], [[0.0, 1.0]], {"fingerprint": "new"}),
                            (gallery, ["g.jpg", "g.jpg"], [[0.0, 1.0], [1.0, 0.0]], {"fingerprint": "new"})])
    assert {p: read(p) for p in (query, gallery)} == before
    assert sorted(os.listdir(tmp_path)) == ["gallery_m.pkl", "query_m.pkl"]  # no staged file left
