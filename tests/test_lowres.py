"""Low-resolution data: make-lr, the train/test degradation keys, the synthetic LR query views, and the
CTL/SNU embeddings export."""
import os

import cv2
import numpy as np
import pytest

from global_model.config import load_config
from global_model.data.lowres import LowResUsageError, degrade, make_lr_folder, eval_lr_scale
from global_model.data.synth.lowres_views import query_view_root
from global_model.data.transforms import TestTransform as EvalTransform, TrainTransform, build_transforms
from post_processing.features import centroid_embeddings, load_embeddings, save_embeddings


def high_frequency_energy(img):
    """Spectral energy outside the central quarter of the (shifted) 2-D spectrum of the grey image."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(float)
    spec = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean()))) ** 2
    h, w = spec.shape
    spec[h // 2 - h // 8:h // 2 + h // 8, w // 2 - w // 8:w // 2 + w // 8] = 0
    return spec.sum()


@pytest.fixture
def image_tree(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    cv2.imwrite(str(src / "0001_c1s1_000001_00.jpg"), (rng.random((96, 50, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(src / "a" / "b" / "x.png"), (rng.random((41, 77, 3)) * 255).astype(np.uint8))
    (src / "a" / "list.txt").write_text("x.png\n")
    return src


def test_make_lr_keeps_names_and_sizes_and_removes_high_frequencies(image_tree, tmp_path):
    out = tmp_path / "x4"
    summary = make_lr_folder(str(image_tree), str(out), 4)
    assert summary["images"] == 2 and summary["copied"] == 1
    assert (out / "a" / "list.txt").read_text() == "x.png\n"
    for rel in ("0001_c1s1_000001_00.jpg", "a/b/x.png"):
        before, after = cv2.imread(str(image_tree / rel)), cv2.imread(str(out / rel))
        assert after.shape == before.shape
        assert high_frequency_energy(after) < 0.2 * high_frequency_energy(before)
    small = tmp_path / "small"
    make_lr_folder(str(image_tree), str(small), 4, keep_small=True)
    assert cv2.imread(str(small / "0001_c1s1_000001_00.jpg")).shape == (24, 12, 3)
    assert cv2.imread(str(small / "a" / "b" / "x.png")).shape == (10, 19, 3)
    png = cv2.imread(str(image_tree / "a" / "b" / "x.png"))
    assert np.array_equal(cv2.imread(str(out / "a" / "b" / "x.png")), degrade(png, 4))  # lossless: exact
    with pytest.raises(LowResUsageError, match="must not be inside --src"):
        make_lr_folder(str(image_tree), str(image_tree / "a" / "lr"), 2)
    with pytest.raises(LowResUsageError, match=">= 1"):
        make_lr_folder(str(image_tree), str(tmp_path / "bad"), 0.5)


def test_test_degradation_follows_lr_apply_and_train_degradation_is_off_by_default(tiny_config):
    cfg = load_config(tiny_config, ["TEST.LR_SCALE", "4", "TEST.LR_APPLY", "query"])
    assert (eval_lr_scale(cfg, "query"), eval_lr_scale(cfg, "gallery"), eval_lr_scale(cfg, None)) == (4.0, 1.0, 1.0)
    both = load_config(tiny_config, ["TEST.LR_SCALE", "2", "TEST.LR_APPLY", "both"])
    assert (eval_lr_scale(both, "gallery"), eval_lr_scale(both, None)) == (2.0, 2.0)
    img = (np.random.default_rng(1).random((96, 128, 3)) * 255).astype(np.uint8)
    query_t = build_transforms(cfg, False, "query")
    np.testing.assert_array_equal(query_t(img), EvalTransform(cfg.INPUT.SIZE_TEST)(degrade(img, 4)))
    np.testing.assert_array_equal(build_transforms(cfg, False, "gallery")(img), EvalTransform(cfg.INPUT.SIZE_TEST)(img))
    plain = build_transforms(load_config(tiny_config), True)
    assert plain.lowres is None  # LR_PROB 0: no random draw, the augmentation of every seed is unchanged
    a = plain(img, np.random.default_rng(5))
    b = TrainTransform(plain.size, plain.resize, plain.padding, plain.flip_prob, plain.re_prob, plain.cj_prob,
                       plain.cj)(img, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    lr = build_transforms(load_config(tiny_config, ["INPUT.LR_PROB", "1.0", "INPUT.LR_SCALES", "[4.0]"]), True)
    assert lr.lowres is not None and not np.array_equal(lr(img, np.random.default_rng(5)), a)


def test_synthetic_benchmark_has_low_resolution_query_views(tiny_data, tmp_path):
    names = open(os.path.join(tiny_data, "name_query.txt")).read().split()
    for scale in (2, 4):
        folder = os.path.join(tiny_data, f"image_query_x{scale}")
        assert sorted(os.listdir(folder)) == sorted(names)
        q = cv2.imread(os.path.join(tiny_data, "image_query", names[0]))
        v = cv2.imread(os.path.join(folder, names[0]))
        assert v.shape == q.shape
        assert np.abs(v.astype(int) - degrade(q, scale)).mean() < 2  # the same operation, JPEG-encoded
    view = query_view_root(tiny_data, 4, str(tmp_path / "x4"))
    assert os.path.realpath(os.path.join(view, "image_query")) == os.path.join(os.path.realpath(tiny_data),
                                                                                "image_query_x4")
    assert os.path.realpath(os.path.join(view, "image_test")) == os.path.realpath(os.path.join(tiny_data, "image_test"))


def test_embeddings_and_paths_round_trip(tmp_path):
    feats = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    paths = [f"/data/q/{i:04d}_c1.jpg" for i in range(5)]
    emb, pth = save_embeddings(str(tmp_path / "out"), paths, feats)
    assert np.load(emb, allow_pickle=False).dtype == np.float32
    assert list(np.load(pth, allow_pickle=False)) == paths
    fs = load_embeddings(emb, pth)
    np.testing.assert_array_equal(fs.feats, feats)
    assert fs.names == [os.path.basename(p) for p in paths]
    names, cents = centroid_embeddings(feats, [3, 1, 3, 3, 1])
    assert names == ["3", "1"]
    want = feats[[0, 2, 3]].mean(0)
    np.testing.assert_allclose(cents[0], want / np.linalg.norm(want), rtol=1e-5)
    save_embeddings(str(tmp_path / "c"), names, cents)
    assert list(np.load(tmp_path / "c" / "paths.npy")) == ["3", "1"]


def test_make_lr_command_writes_the_tree_and_refuses_out_inside_src(image_tree, tmp_path, capsys):
    from global_model.cli import main

    assert main(["make-lr", "--src", str(image_tree), "--out", str(tmp_path / "x2"), "--scale", "2"]) == 0
    assert "wrote 2 images x2" in capsys.readouterr().out
    assert cv2.imread(str(tmp_path / "x2" / "a" / "b" / "x.png")).shape == (41, 77, 3)
    assert main(["make-lr", "--src", str(image_tree), "--out", str(image_tree / "lr"), "--scale", "2"]) == 2
    assert "must not be inside --src" in capsys.readouterr().err


def test_extract_format_embeddings_with_and_without_centroids(tiny_data, tiny_config, tmp_path):
    import torch

    from global_model.cli import main
    from global_model.modeling import build_model

    cfg = load_config(tiny_config, ["DATASETS.ROOT", tiny_data, "DATALOADER.NUM_WORKERS", "0"])
    ckpt = tmp_path / "m.pth"
    torch.save({"model": build_model(cfg, 5).state_dict(), "cfg": cfg.dump(), "num_classes": 5}, ckpt)
    args = ["extract", "--checkpoint", str(ckpt), "--out-dir", str(tmp_path / "f"), "--split", "query",
            "--no-progress", "TEST.FLIP", "False"]
    assert main(args + ["--name", "m", "--format", "embeddings"]) == 0
    fs = load_embeddings(tmp_path / "f" / "query_m" / "embeddings.npy", tmp_path / "f" / "query_m" / "paths.npy")
    names = open(os.path.join(tiny_data, "name_query.txt")).read().split()
    assert fs.names == names and fs.feats.shape[0] == len(names)
    paths = np.load(tmp_path / "f" / "query_m" / "paths.npy")
    assert all(os.path.isfile(p) for p in paths)
    assert main(args + ["--name", "c", "--format", "embeddings", "--centroids"]) == 0
    ids = np.load(tmp_path / "f" / "query_c" / "paths.npy")
    cents = np.load(tmp_path / "f" / "query_c" / "embeddings.npy")
    from global_model.data.dataset import build_test_split

    pids = np.array([r.pid for r in build_test_split(cfg)[0]["query"]])
    assert list(ids) == list(dict.fromkeys(str(p) for p in pids)) and cents.shape == (len(ids), fs.feats.shape[1])
    mean = fs.feats[pids == int(ids[0])].mean(0)
    np.testing.assert_allclose(cents[0], mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)
    assert main(args + ["--name", "x", "--centroids"]) == 2
