"""`ensemble search` (result.csv) and `ensemble visualize` (rank-list and CMC PNGs)."""
from __future__ import annotations

import csv

import cv2
import pytest
from click.testing import CliRunner

from ensembles.cli import main
from ensembles.visualize import BORDER, CELL, GREEN, GREY, LABEL_H, RED


@pytest.fixture(scope="module")
def case(tmp_path_factory, ensemble_fakes):
    base = tmp_path_factory.mktemp("tools")
    tree = ensemble_fakes.build_tree(str(base / "data"), images=True)
    ensemble_fakes.write_features(str(base / "feats"), tree, {"a": 0.6})
    res = CliRunner().invoke(main, ["fuse", "--models", "a", "--features-dir", str(base / "feats"),
                                    "--data-root", str(base / "data"), "--out", str(base / "track2.txt"),
                                    "--metrics-out", str(base / "metrics.json")])
    assert res.exit_code == 0, res.output
    return base, tree


def run(*args, code=0):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == code, res.output + repr(res.exception)
    return res


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


TOPK = 5


@pytest.fixture(scope="module")
def searched(case, tmp_path_factory):
    """The rows of one ``search --topk TOPK`` run of model a, grouped by query (``by_query``) too."""
    base, _ = case
    out = tmp_path_factory.mktemp("search")
    run("search", "--query-features", base / "feats" / "query_a.pkl", "--gallery-features",
        base / "feats" / "gallery_a.pkl", "--data-root", base / "data", "--topk", TOPK, "--out", out)
    rows = read_csv(out / "result.csv")
    by_query = {}
    for r in rows:
        by_query.setdefault(r["query_filename"], []).append(r)
    return {"rows": rows, "by_query": by_query}


def test_search_writes_topk_rows_per_query_under_a_header(case, searched):
    _, tree = case
    rows = searched["rows"]
    assert list(rows[0]) == ["query_filename", "predicted_id", "predicted_path", "distance", "rank"]
    assert len(rows) == TOPK * len(tree.query)
    assert set(searched["by_query"]) == set(tree.query)


def test_search_ranks_by_increasing_distance(searched):
    for rs in searched["by_query"].values():
        assert [int(r["rank"]) for r in rs] == list(range(1, TOPK + 1))
        dists = [float(r["distance"]) for r in rs]
        assert dists == sorted(dists)


def test_search_names_the_gallery_image_and_its_id(case, searched):
    _, tree = case
    gallery_pid = dict(zip(tree.gallery, tree.g_pids))
    for r in searched["rows"]:
        name = r["predicted_path"].replace("\\", "/").split("/")[-1]
        assert r["predicted_path"].endswith(f"image_test/{name}") and int(r["predicted_id"]) == gallery_pid[name]


def test_search_top1_is_mostly_right(case, searched):
    _, tree = case
    query_pid = dict(zip(tree.query, tree.q_pids))
    correct = sum(int(rs[0]["predicted_id"]) == query_pid[q] for q, rs in searched["by_query"].items())
    assert correct / len(searched["by_query"]) > 0.8


def test_search_without_dataset_uses_gallery_dir_and_unknown_ids(case, tmp_path):
    base, _ = case
    res = run("search", "--query-features", base / "feats" / "query_a.pkl", "--gallery-features",
              base / "feats" / "gallery_a.pkl", "--gallery-dir", "gal", "--topk", 3, "--out", tmp_path)
    rows = read_csv(tmp_path / "result.csv")
    assert all(r["predicted_id"] == "-1" and r["predicted_path"].startswith("gal") for r in rows)
    assert "no ranklist.png: image" in res.output and not (tmp_path / "ranklist.png").exists()


def test_search_needs_query_input(case, tmp_path):
    base, _ = case
    res = run("search", "--gallery-features", base / "feats" / "gallery_a.pkl", "--out", tmp_path / "r", code=2)
    assert "--query-features" in res.output
    assert not (tmp_path / "r").exists()


def border_colors(png, rows, k):
    """Border colour of every gallery cell: rows of (query cell, 12 px gap, k gallery cells)."""
    img = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    cell_w, row_h = CELL[1] + 2 * BORDER, LABEL_H + CELL[0] + 2 * BORDER + 6
    assert img.shape[:2] == (rows * row_h, cell_w + 12 + k * cell_w)
    return {tuple(int(v) for v in img[r * row_h + LABEL_H + 1, cell_w + 12 + i * cell_w + 1])
            for r in range(rows) for i in range(k)}


def test_visualize_draws_green_and_red_borders_and_cmc(case, tmp_path):
    base, _ = case
    png, cmc = tmp_path / "ranklist.png", tmp_path / "cmc.png"
    run("visualize", base / "track2.txt", "--data-root", base / "data", "--out", png, "--cmc-out", cmc,
        "--metrics", base / "metrics.json", "--queries", 4)
    assert border_colors(png, 4, 10) == {GREEN, RED}
    assert cv2.imread(str(cmc)) is not None


def test_visualize_without_ground_truth_uses_grey_borders(case, tmp_path, ensemble_fakes):
    base, _ = case
    nogt = ensemble_fakes.build_tree(str(tmp_path / "nogt"), ground_truth=False, images=True)
    png = tmp_path / "ranklist.png"
    run("visualize", base / "track2.txt", "--data-root", nogt.root, "--out", png, "--queries", 2, "--topk", 3)
    assert border_colors(png, 2, 3) == {GREY}
    res = run("visualize", base / "track2.txt", "--data-root", nogt.root, "--out", png, "--cmc-out",
              tmp_path / "cmc.png", code=1)
    assert "ground truth" in res.output


def test_search_extracts_query_images_with_a_checkpoint(case, tmp_path):
    """A random tiny resnet18 checkpoint: a query that is a copy of a gallery image finds it first."""
    import shutil

    from global_model.config import get_cfg
    from global_model.data.records import ImageRecord
    from global_model.engine.checkpoint import save_checkpoint
    from global_model.engine.extractor import extract_features
    from global_model.modeling import build_model
    from post_processing.features import save_features

    base, tree = case
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.BACKBONE", "resnet18", "MODEL.PRETRAINED", False, "MODEL.DEVICE", "cpu",
                         "INPUT.SIZE_TEST", [32, 32], "DATALOADER.NUM_WORKERS", 0, "TEST.IMS_PER_BATCH", 64])
    model = build_model(cfg, num_classes=4).eval()
    ckpt = tmp_path / "model.pth"
    save_checkpoint(str(ckpt), {"model": model.state_dict(), "cfg": cfg.dump(), "num_classes": 4})
    gallery = [ImageRecord(str(base / "data" / "image_test" / n), -1, -1) for n in tree.gallery]
    names, feats = extract_features(model, gallery, cfg, progress=False)
    save_features(str(tmp_path / "gallery.pkl"), names, feats)
    queries = tmp_path / "queries"
    queries.mkdir()
    picked = tree.gallery[:3]
    for n in picked:
        shutil.copy(base / "data" / "image_test" / n, queries / f"q_{n}")
    out = tmp_path / "out"
    run("search", "--query-dir", queries, "--checkpoint", ckpt, "--gallery-features", tmp_path / "gallery.pkl",
        "--data-root", base / "data", "--topk", 4, "--out", out)
    rows = [r for r in read_csv(out / "result.csv") if r["rank"] == "1"]
    assert [r["query_filename"] for r in rows] == [f"q_{n}" for n in picked]
    assert all(r["predicted_path"].endswith(n) and float(r["distance"]) < 1e-3 for r, n in zip(rows, picked))
