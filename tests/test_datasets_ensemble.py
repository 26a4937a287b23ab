"""`ensemble` on datasets other than AIC20: fuse writes a ranking file whose `ensemble evaluate --dataset`
score equals the metrics JSON (market1501, cuhk03_np, csv), the protocol is recorded, the ranking file's
errors name the line, and `datasets` lists the loaders."""
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from ensembles.cli import main
from post_processing.ranking import RankingError, read_ranking, write_ranking

CASES = {"market1501": "market1501={root}", "cuhk03_np": "cuhk03_np(variant=labeled)={root}", "csv": "csv={root}"}


def run(*args, ok=True):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert (res.exit_code == 0) == ok, res.output + repr(res.exception)
    return res


@pytest.mark.parametrize("layout", sorted(CASES))
def test_fuse_ranking_evaluate_round_trip(tmp_path, fake_trees, ensemble_fakes, layout):
    tree = fake_trees.build_person_set(str(tmp_path / layout), layout)
    if layout == "market1501":  # a test-time copy: no training split
        shutil.rmtree(os.path.join(tree.root, "bounding_box_train"))
    ensemble_fakes.write_features(str(tmp_path / "f"), tree, {"a": 0.8, "b": 0.9})
    spec = CASES[layout].format(root=tree.root)
    ranking, metrics, scores = tmp_path / "ranking.txt", tmp_path / "m.json", tmp_path / "e.json"
    out = run("fuse", "--dataset", spec, "--features-dir", tmp_path / "f", "--models", "a,b", "--rerank",
              "--rerank-k1", 6, "--rerank-k2", 3, "--topk", 20, "--out", ranking, "--metrics-out", metrics).output
    lines = open(ranking).read().splitlines()
    assert lines[0] == "# reid-ensemble ranking: 20 gallery images per query" and len(lines) == 1 + len(tree.query)
    assert lines[1].split()[0] == tree.query[0] and len(lines[1].split()) == 21
    data = json.load(open(metrics))
    assert data["protocol"]["name"] == "market" and data["protocol"]["dataset"] == layout
    if layout == "csv":
        assert "no camera ids" in out and any("only the query image itself" in n for n in data["notes"])
    res = run("evaluate", ranking, "--dataset", spec, "--json-out", scores).output
    assert "protocol: " in res
    assert json.load(open(scores))["mAP"] == data["mAP"] and json.load(open(scores))["cmc"] == data["cmc"]
    assert 0 < data["mAP"] <= 1
    run("validate", ranking, "--dataset", spec)
    if layout == "market1501":
        run("visualize", ranking, "--dataset", spec, "--out", tmp_path / "grid.png", "--cmc-out", tmp_path / "cmc.png",
            "--metrics", metrics, "--queries", 2)
        assert os.path.getsize(tmp_path / "grid.png") > 0 and os.path.getsize(tmp_path / "cmc.png") > 0


def test_the_ranking_file_errors_name_the_line(tmp_path):
    path = str(tmp_path / "r.txt")
    write_ranking(path, ["q1.jpg", "q2.jpg"], ["g1.jpg", "g2.jpg", "g3.jpg"], np.array([[2, 0], [1, 2]]))
    assert read_ranking(path, ["q2.jpg", "q1.jpg"], ["g1.jpg", "g2.jpg", "g3.jpg"]).tolist() == [[1, 2], [2, 0]]
    for text, message in (("q1.jpg g1.jpg\nq9.jpg g2.jpg\n", r"r.txt:2: q9.jpg is not a query image"),
                          ("q1.jpg g1.jpg g1.jpg\n", r"r.txt:1: a gallery image is listed twice"),
                          ("q1.jpg g1.jpg\nq2.jpg g1.jpg g2.jpg\n", r"r.txt:2: 2 gallery images, the lines before "
                                                                  r"have 1"),
                          ("q1.jpg g7.jpg\n", r"r.txt:1: g7.jpg is not a gallery image"),
                          ("q1.jpg g1.jpg\n", r"no line for 1 query image\(s\), first q2.jpg")):
        open(path, "w").write(text)
        with pytest.raises(RankingError, match=message):
            read_ranking(path, ["q1.jpg", "q2.jpg"], ["g1.jpg", "g2.jpg", "g3.jpg"])


def test_cuhk03_classic_rankings_are_scored_single_shot(tmp_path, fake_trees, ensemble_fakes):
    fake_trees.build_cuhk03(str(tmp_path / "c"))
    from global_model.data.datasets import load_dataset

    ds = load_dataset("cuhk03", str(tmp_path / "c"), variant="labeled", protocol="classic", split=1)
    tree = ensemble_fakes.Tree(str(tmp_path / "c"), [r.name for r in ds.query], [r.name for r in ds.gallery],
                               [r.pid for r in ds.query], [r.pid for r in ds.gallery], [], [])
    ensemble_fakes.write_features(str(tmp_path / "f"), tree, {"a": 0.3})
    spec = f"cuhk03(variant=labeled, protocol=classic, split=1)={tmp_path / 'c'}"
    run("fuse", "--dataset", spec, "--features-dir", tmp_path / "f", "--models", "a", "--topk", 3,
        "--out", tmp_path / "r.txt", "--metrics-out", tmp_path / "m.json")
    data = json.load(open(tmp_path / "m.json"))
    assert data["protocol"]["name"] == "cuhk03" and data["protocol"]["options"] == {"repeats": 10}


def test_a_dataset_entry_without_a_folder_asks_for_one_and_datasets_lists_loaders():
    res = run("fuse", "--dataset", "market1501", "--features-dir", ".", "--models", "a", "--out", "x.txt", ok=False)
    assert "give its folder as --dataset market1501=PATH or --data-root" in res.output
    listing = run("datasets").output
    for name in ("cuhk03", "cuhk03_np", "dukemtmc", "msmt17", "prw", "folder", "csv", "vehicleid", "aic20"):
        assert f"\n{name}\n" in f"\n{listing}"
