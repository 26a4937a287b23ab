"""Extractor: pickles named like the image folders with unit-norm float32 vectors, npz, flip TTA, bad input."""
import os
import shutil

import numpy as np
import pytest
import torch

from global_model.cli import main
from global_model.data.dataset import build_test_records
from global_model.data.image_io import ImageReadError
from global_model.engine.checkpoint import CheckpointError
from global_model.engine.extractor import extract_features, infer_batch, load_model_from_checkpoint
from post_processing.features import load_features


def read_names(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def test_extract_cli_writes_named_unit_norm_float32_pickles(tiny_run, tmp_path, capsys):
    out = str(tmp_path / "feats")
    rc = main(["extract", "--checkpoint", tiny_run["checkpoint"], "--data-root", tiny_run["root"], "--out-dir", out,
               "--name", "tiny", "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    for split, folder, listing in (("query", "image_query", "name_query.txt"),
                                   ("gallery", "image_test", "name_test.txt")):
        path = os.path.join(out, f"{split}_tiny.pkl")
        assert f"wrote {path}" in printed
        fs = load_features(path)
        assert fs.names == read_names(os.path.join(tiny_run["root"], listing))  # the format's order
        assert set(fs.names) == set(os.listdir(os.path.join(tiny_run["root"], folder)))
        assert fs.feats.dtype == np.float32
        assert fs.feats.shape[1] == tiny_run["trainer"].model.feat_dim
        np.testing.assert_allclose(np.linalg.norm(fs.feats, axis=1), 1.0, atol=1e-5)
    assert sorted(os.listdir(out)) == ["gallery_tiny.pkl", "query_tiny.pkl"]  # atomic: no temp files left


def test_npz_single_split_and_overrides(tiny_run, tiny_config, tmp_path):
    out = str(tmp_path / "npz")
    assert main(["extract", "--config", tiny_config, "--checkpoint", tiny_run["checkpoint"], "--data-root", tiny_run["root"],
                 "--out-dir", out, "--name", "m", "--split", "query", "--format", "npz", "--no-progress",
                 "INPUT.SIZE_TEST", "[48, 64]", "TEST.FLIP", "False"]) == 0
    assert os.listdir(out) == ["query_m.npz"]
    no_flip = load_features(os.path.join(out, "query_m.npz"))
    model, cfg = load_model_from_checkpoint(tiny_run["checkpoint"])
    query = build_test_records(cfg, tiny_run["root"])["query"]
    names, flip = extract_features(model, query, cfg, progress=False)
    assert names == no_flip.names and not np.allclose(flip, no_flip.feats, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(no_flip.feats, axis=1), 1.0, atol=1e-5)


def test_split_train_writes_training_features_for_metric_learning(tiny_run, tmp_path):
    out = str(tmp_path / "train")
    assert main(["extract", "--checkpoint", tiny_run["checkpoint"], "--data-root", tiny_run["root"], "--out-dir", out,
                 "--name", "m", "--split", "train", "--no-progress", "TEST.FLIP", "False"]) == 0
    fs = load_features(os.path.join(out, "train_m.pkl"))
    assert fs.names == read_names(os.path.join(tiny_run["root"], "name_train.txt"))
    assert os.listdir(out) == ["train_m.pkl"]


def test_flip_tta_averages_before_normalising():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    x = torch.randn(5, 3, 8, 12)
    with torch.no_grad():
        expected = torch.nn.functional.normalize((model(x) + model(x.flip(3))) / 2, dim=1)
    got = infer_batch(model, x, flip=True, dtype=None)
    assert got.dtype == torch.float32 and torch.allclose(got, expected, atol=1e-6)
    raw = infer_batch(model, x, flip=False, dtype=None, normalize=False)
    assert torch.allclose(raw, model(x).detach(), atol=1e-6)


def test_checkpoint_of_another_architecture_names_the_layers(tiny_run, tiny_config, tmp_path, capsys):
    from global_model.config import load_config

    cfg = load_config(tiny_config, ["MODEL.BACKBONE", "resnet34", "MODEL.REDUCTION_DIM", "256"])
    with pytest.raises(CheckpointError) as e:
        load_model_from_checkpoint(tiny_run["checkpoint"], cfg)
    msg = str(e.value)
    assert "classifier.weight: checkpoint (24, 512) vs model (24, 256)" in msg
    assert "missing in checkpoint" in msg and ".layer1.2." in msg  # resnet34 has a third block
    assert main(["extract", "--config", tiny_config, "--checkpoint", tiny_run["checkpoint"], "--out-dir", str(tmp_path),
                 "--name", "x", "MODEL.BACKBONE", "resnet34"]) == 1  # a runtime error, not a usage error
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not fit the model" in err and "Traceback" not in err


@pytest.mark.parametrize("workers", [0, 1])
def test_corrupt_image_is_named(tiny_run, tmp_path, capsys, workers):
    root = str(tmp_path / "data")
    shutil.copytree(tiny_run["root"], root, ignore=shutil.ignore_patterns("fvrid"))
    bad = os.path.join(root, "image_test", read_names(os.path.join(root, "name_test.txt"))[3])
    with open(bad, "wb") as f:
        f.write(b"\xff\xd8 truncated jpeg")
    model, cfg = load_model_from_checkpoint(tiny_run["checkpoint"], opts=["DATALOADER.NUM_WORKERS", str(workers)])
    gallery = build_test_records(cfg, root)["gallery"]
    with pytest.raises(ImageReadError) as e:
        extract_features(model, gallery, cfg, progress=False)
    assert str(e.value) == f"cannot read image {bad}: corrupt or not an image"
    rc = main(["extract", "--checkpoint", tiny_run["checkpoint"], "--data-root", root, "--out-dir", str(tmp_path / "f"),
               "--name", "x", "--split", "gallery", "--no-progress", "DATALOADER.NUM_WORKERS", str(workers)])
    err = capsys.readouterr().err
    assert rc == 1 and bad in err and "Traceback" not in err
    assert not os.path.exists(str(tmp_path / "f" / "gallery_x.pkl"))


def test_checkpoint_trained_from_imagenet_extracts_offline(tiny_run, tmp_path, monkeypatch):
    # The stored config asks for ImageNet weights; the checkpoint already holds every weight, so
    # rebuilding must not try to fetch them (this machine, like many clusters, is offline).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))
    ckpt = torch.load(tiny_run["checkpoint"], map_location="cpu", weights_only=False)
    assert "PRETRAINED: false" in ckpt["cfg"]
    ckpt["cfg"] = ckpt["cfg"].replace("PRETRAINED: false", "PRETRAINED: true")
    path = str(tmp_path / "imagenet_init.pth")
    torch.save(ckpt, path)
    model, cfg = load_model_from_checkpoint(path)
    assert cfg.MODEL.PRETRAINED is True  # the user's config is reported as stored
    reference, _ = load_model_from_checkpoint(tiny_run["checkpoint"])
    for a, b in zip(model.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)
