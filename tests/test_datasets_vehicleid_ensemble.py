"""`ensemble` on VehicleID scores the protocol: fuse post-processes all test images once and reports the
mean over the 10 draws of the loader (each draw's queries ranked within its one-image-per-id gallery),
checked against a hand computation; the ranking file says which draw it ranks and `ensemble evaluate`
scores exactly that draw; tune optimises the same mean."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from ensembles.cli import main
from global_model.data.datasets import load_dataset
from post_processing.features import save_features

SPEC = "vehicleid(repeat={repeat}, seed=3)={root}"


def run(*args, ok=True):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert (res.exit_code == 0) == ok, res.output + repr(res.exception)
    return res


@pytest.fixture
def vehicleid(tmp_path, fake_trees):
    """Fake tree (12 test images, 3 ids) and one model's features: unit 2-D vectors at distinct angles, so
    the fused euclidean order is the angle order; the query/gallery files follow draw 0 of the loader."""
    root = fake_trees.build_vehicleid(str(tmp_path / "vid"))
    ds = load_dataset("vehicleid", root, seed=3)
    names = [r.name for r in ds.query + ds.gallery]
    angle = dict(zip(sorted(names), np.random.default_rng(5).uniform(0, 3, 12)))  # < pi: no wrap, no ties
    unit = {n: [np.cos(angle[n]), np.sin(angle[n])] for n in names}
    os.makedirs(tmp_path / "f")
    for side, records in (("query", ds.query), ("gallery", ds.gallery)):
        save_features(str(tmp_path / "f" / f"{side}_a.pkl"), [r.name for r in records],
                      np.asarray([unit[r.name] for r in records], np.float32))
    return root, angle


def hand_scores(root, angle, repeat):
    """One draw by hand: each query's match rank among the draw's gallery by angle distance; AP = 1/(rank+1)."""
    ds = load_dataset("vehicleid", root, repeat=repeat, seed=3)
    ranks = []
    for q in ds.query:
        d = {g.name: abs(angle[q.name] - angle[g.name]) for g in ds.gallery}
        match = next(g.name for g in ds.gallery if g.pid == q.pid)
        ranks.append(sum(v < d[match] for v in d.values()))
    ranks = np.asarray(ranks)
    return {"mAP": float(np.mean(1.0 / (ranks + 1))), "rank1": float(np.mean(ranks == 0)),
            "gallery": sorted(g.name for g in ds.gallery)}


def test_fuse_reports_the_mean_over_the_draws_and_evaluate_scores_the_written_draw(tmp_path, vehicleid):
    root, angle = vehicleid
    by_hand = [hand_scores(root, angle, r) for r in range(10)]
    assert len({tuple(h["gallery"]) for h in by_hand}) > 1  # the draws differ
    spec = SPEC.format(repeat=0, root=root)
    out = run("fuse", "--dataset", spec, "--features-dir", tmp_path / "f", "--models", "a", "--topk", 3,
              "--out", tmp_path / "r.txt", "--metrics-out", tmp_path / "m.json").output
    data = json.load(open(tmp_path / "m.json"))
    assert data["mAP"] == pytest.approx(np.mean([h["mAP"] for h in by_hand]), abs=1e-12)
    assert data["rank1"] == pytest.approx(np.mean([h["rank1"] for h in by_hand]), abs=1e-12)
    assert [d["mAP"] for d in data["draws"]] == pytest.approx([h["mAP"] for h in by_hand], abs=1e-12)
    assert data["protocol"]["name"] == "vehicleid" and "post-processing ran once on all 12 test images" in out
    # The ranking file: draw 0's 9 queries within its 3 gallery images, and it says so.
    lines = open(tmp_path / "r.txt").read().splitlines()
    assert lines[1].startswith("# ranks vehicleid repeat=0, seed=3, test_size=800: its 9 queries ranked within its 3")
    assert len(lines) == 2 + 9 and data["num_query"] == 9 and data["num_gallery"] == 3
    assert data["ranking_file"]["mAP"] == pytest.approx(by_hand[0]["mAP"], abs=1e-12)
    res = run("evaluate", tmp_path / "r.txt", "--dataset", spec, "--json-out", tmp_path / "e.json").output
    assert "scored: vehicleid repeat=0, seed=3" in res
    assert json.load(open(tmp_path / "e.json"))["mAP"] == data["ranking_file"]["mAP"]
    # Read against another draw, the file is refused with what to give instead.
    res = run("evaluate", tmp_path / "r.txt", "--dataset", SPEC.format(repeat=1, root=root), ok=False).output
    assert "ranks one draw: give the --dataset entry it was written for" in res


def test_fuse_on_another_draw_reads_the_same_features_and_tune_scores_the_mean(tmp_path, vehicleid):
    root, angle = vehicleid
    mean = np.mean([hand_scores(root, angle, r)["mAP"] for r in range(10)])
    spec = SPEC.format(repeat=4, root=root)  # features were written for draw 0: any draw reads them
    run("fuse", "--dataset", spec, "--features-dir", tmp_path / "f", "--models", "a", "--topk", 3,
        "--out", tmp_path / "r.txt", "--metrics-out", tmp_path / "m.json")
    data = json.load(open(tmp_path / "m.json"))
    assert data["mAP"] == pytest.approx(mean, abs=1e-12)
    assert data["ranking_file"]["mAP"] == pytest.approx(hand_scores(root, angle, 4)["mAP"], abs=1e-12)
    out = run("tune", "--dataset", spec, "--features-dir", tmp_path / "f", "--models", "a", "--topk", 3,
              "--search", "grid", "--weight-grid", "1", "--out", tmp_path / "p.yml").output
    assert f"mAP {100 * mean:.2f}" in open(tmp_path / "p.yml").read(), out
