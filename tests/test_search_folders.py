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


@pytest.fixture(scope="module")
def searched(random_checkpoint, folders, tmp_path_factory):
    """One end-to-end search of the query folder in the gallery folder, ids from the folders; options after
    the KEY VALUE pairs (--ranklist-queries) still parse as options."""
    out = tmp_path_factory.mktemp("search") / "out"
    res = run("search", "--checkpoint", random_checkpoint, "--query-dir", folders / "query", "--gallery-dir",
              folders / "gallery", "--folder-ids", "--topk", 4, "--out", out, "TEST.IMS_PER_BATCH", "4",
              "--ranklist-queries", 2, "TEST.FLIP", "False")
    with open(out / "results.json", encoding="utf-8") as f:
        doc = json.load(f)
    with open(out / "result.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"out": out, "output": res.output, "doc": doc, "rows": rows}


def test_search_on_two_folders_finds_each_query_copy_first(folders, searched):
    doc = searched["doc"]
    assert [q["name"] for q in doc["queries"]] == [f"{pid}/q.png" for pid in IDS]
    for q, pid in zip(doc["queries"], IDS):
        assert q["id"] == pid and q["path"] == str(folders / "query" / pid / "q.png")
        first = q["matches"][0]
        assert first == {"rank": 1, "name": f"{pid}/g0.png", "path": str(folders / "gallery" / pid / "g0.png"),
                         "id": pid, "distance": pytest.approx(0.0, abs=1e-4)}
        assert [m["rank"] for m in q["matches"]] == [1, 2, 3, 4]
        assert [m["distance"] for m in q["matches"]] == sorted(m["distance"] for m in q["matches"])
    assert doc["top1_accuracy"] == 1.0 and doc["queries_with_ids"] == 3
    assert doc["gallery"]["count"] == 9 and doc["topk"] == 4 and doc["rerank"] is None
    assert "top-1 accuracy: 100.00% over 3 queries" in searched["output"]


def test_search_csv_rows_match_results_json(searched):
    rows, doc = searched["rows"], searched["doc"]
    assert len(rows) == 3 * 4
    for r in rows:
        q = next(q for q in doc["queries"] if q["name"] == r["query_filename"])
        m = q["matches"][int(r["rank"]) - 1]
        assert (r["predicted_path"], r["predicted_id"]) == (m["path"], m["id"])
        assert float(r["distance"]) == pytest.approx(m["distance"], abs=1e-5)


def test_search_draws_a_rank_list_of_the_worst_queries(searched):
    img = cv2.imread(str(searched["out"] / "ranklist.png"))
    from ensembles.visualize import BORDER, CELL, LABEL_H

    assert img.shape[0] == 2 * (LABEL_H + CELL[0] + 2 * BORDER + 6)


def test_search_features_against_a_folder_with_rerank(random_checkpoint, folders, tmp_path):
    """Precomputed query features (the API's) against the gallery folder, re-ranked."""
    from global_model.api import FeatureExtractor
    from post_processing.features import save_features

    names = [f"{pid}/q.png" for pid in IDS]
    feats = FeatureExtractor(random_checkpoint)([str(folders / "query" / n) for n in names])
    save_features(str(tmp_path / "q.pkl"), names, feats)
    run("search", "--query-features", tmp_path / "q.pkl", "--query-dir", folders / "query", "--checkpoint",
        random_checkpoint, "--gallery-dir", folders / "gallery", "--folder-ids", "--rerank", "--k1", 3, "--k2", 2,
        "--topk", 3, "--out", tmp_path / "out", "--ranklist-queries", 0)
    with open(tmp_path / "out" / "results.json", encoding="utf-8") as f:
        doc = json.load(f)
    assert doc["rerank"] == {"k1": 3, "k2": 2, "lambda": 0.3}
    assert [q["matches"][0]["id"] for q in doc["queries"]] == list(IDS)
    assert not (tmp_path / "out" / "ranklist.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--k1", "5"], "add --rerank"),
    (["TEST.FLIP"], "has no value"),
    (["TEST.FLIP", "False", "--bogus", "1"], "no such option: --bogus"),
    (["--data-root", "."], "--dataset/--data-root give the images of a feature file"),
    ([], "give --query-dir"),
])
def test_search_usage_errors(random_checkpoint, folders, tmp_path, args, message):
    base = ["search", "--checkpoint", random_checkpoint, "--gallery-dir", folders / "gallery", "--out", tmp_path / "o"]
    if args:
        base += ["--query-dir", folders / "query"]
    res = run(*base, *args, code=2)
    assert message in res.output
    assert not (tmp_path / "o").exists()


def test_search_of_feature_files_refuses_extraction_options(folders, tmp_path):
    from post_processing.features import save_features

    save_features(str(tmp_path / "f.pkl"), ["a.png", "b.png"], np.eye(2, dtype=np.float32))
    res = run("search", "--query-features", tmp_path / "f.pkl", "--gallery-features", tmp_path / "f.pkl",
              "--out", tmp_path / "o", "TEST.FLIP", "False", code=2)
    assert "overrides are for extraction" in res.output

