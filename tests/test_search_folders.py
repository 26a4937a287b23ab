"""`ensemble search` on folders (end to end, a tiny random checkpoint), its results.json and rank list,
and the FeatureExtractor Python API it extracts with."""
from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ensembles.search import SearchError, SearchUsageError, folder_side, image_files, query_scores, Side

IDS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory):
    """A random resnet18 checkpoint at 32×32 input (no training: identical images still match)."""
    from global_model.config import get_cfg
    from global_model.engine.checkpoint import save_checkpoint
    from global_model.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.BACKBONE", "resnet18", "MODEL.PRETRAINED", False, "MODEL.DEVICE", "cpu",
                         "INPUT.SIZE_TEST", [32, 32], "DATALOADER.NUM_WORKERS", 0, "TEST.IMS_PER_BATCH", 64])
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=4).eval()
    path = tmp_path_factory.mktemp("ckpt") / "model.pth"
    save_checkpoint(str(path), {"model": model.state_dict(), "cfg": cfg.dump(), "num_classes": 4})
    return str(path)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """``gallery/<id>/g<k>.png`` (3 ids × 3 distinct random images, one in a nested folder) and
    ``query/<id>/q.png``, each query a copy of its identity's first gallery image."""
    base = tmp_path_factory.mktemp("folders")
    rng = np.random.default_rng(0)
    for i, pid in enumerate(IDS):
        gdir = base / "gallery" / pid
        (gdir / "nested").mkdir(parents=True)
        for k in range(3):
            img = rng.integers(0, 256, (40 + 4 * i, 24, 3), dtype=np.uint8)
            cv2.imwrite(str(gdir / ("nested" if k == 2 else "") / f"g{k}.png"), img)
        (base / "query" / pid).mkdir(parents=True)
        shutil.copy(gdir / "g0.png", base / "query" / pid / "q.png")
    (base / "gallery" / "notes.txt").write_text("not an image")
    return base


def run(*args, code=0):
    from ensembles.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == code, res.output + repr(res.exception)
    return res


def test_image_files_are_found_recursively_as_sorted_relative_paths(folders, tmp_path):
    assert image_files(str(folders / "gallery"))[:3] == ["alice/g0.png", "alice/g1.png", "alice/nested/g2.png"]
    assert len(image_files(str(folders / "gallery"))) == 9
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("x")
    with pytest.raises(SearchError, match="no images"):
        image_files(str(tmp_path))
    with pytest.raises(SearchError, match="does not exist"):
        image_files(str(tmp_path / "missing"))


def test_folder_ids_need_a_subfolder_per_identity(folders, tmp_path):
    assert folder_side(str(folders / "query"), folder_ids=True).ids == list(IDS)
    cv2.imwrite(str(tmp_path / "loose.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SearchUsageError, match="subfolder named after its identity"):
        folder_side(str(tmp_path), folder_ids=True)


def test_scores_count_unknown_query_ids_out_and_missing_matches_as_wrong():
    query = Side(["a", "b", "c"], ["a", "b", "c"], ["x", None, "z"], "q")
    gallery = Side(["g0", "g1", "g2"], ["g0", "g1", "g2"], ["x", "y", None], "g")
    idx = np.array([[1, 0], [0, 1], [0, 1]])
    s = query_scores(query, gallery, idx)
    assert s["counted"] == 2 and s["top1_accuracy"] == 0.0  # a: first is y; c: z is not in the gallery
    assert s["ap"][0] == pytest.approx(0.5) and np.isnan(s["ap"][1]) and np.isnan(s["ap"][2])
    assert s["mAP"] == pytest.approx(0.5)
    assert query_scores(Side(["a"], ["a"], [None], "q"), gallery, idx[:1]) is None


def test_feature_extractor_takes_paths_arrays_and_tensors_alike(random_checkpoint, folders):
    from global_model.api import FeatureExtractor, ImageInputError
    from global_model.data.image_io import read_image

    ex = FeatureExtractor(random_checkpoint, device="cpu")
    paths = [str(folders / "gallery" / pid / "g1.png") for pid in IDS]
    by_path = ex(paths)
    assert by_path.shape == (3, ex(paths[0]).shape[1]) and by_path.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(by_path, axis=1), 1.0, atol=1e-5)
    arrays = [read_image(p) for p in paths]
    np.testing.assert_allclose(ex(arrays), by_path, atol=1e-5)
    tensor = torch.stack([torch.from_numpy(ex._transform(a)) for a in arrays])
    np.testing.assert_allclose(ex(tensor), by_path, atol=1e-5)
    np.testing.assert_allclose(ex(tensor[1]), by_path[1:2], atol=1e-5)
    with pytest.raises(ImageInputError, match="uint8"):
        ex(np.zeros((8, 8, 3), np.float32))
