"""The protocol each dataset declares reaches its users: VehicleID's loader and evaluator share their
draws, training validation scores under DATASETS.TEST's protocol and logs the table, and test-time runs
need no training split."""
import logging
import os
import shutil

import numpy as np
import pytest

from global_model.data.datasets import load_dataset
from global_model.data.datasets.scoring import evaluate_features
from post_processing.evaluation import evaluate


def test_vehicleid_loader_draws_are_the_evaluator_draws(tmp_path, fake_trees):
    root = fake_trees.build_vehicleid(str(tmp_path / "vid"))
    draws = [load_dataset("vehicleid", root, repeat=r, seed=3) for r in range(10)]
    records = draws[4].gallery + draws[4].query  # any order: the draw follows the image names
    feats = np.random.default_rng(0).normal(size=(len(records), 8))
    pids = np.array([r.pid for r in records])
    index = {r.name: i for i, r in enumerate(records)}
    res, _ = evaluate_features(draws[4], draws[4].query, draws[4].gallery, feats[len(draws[4].gallery):],
                               feats[:len(draws[4].gallery)])
    per_draw = []
    for ds in draws:  # the loader's draw r, scored alone with the Market kernel
        q = [index[r.name] for r in ds.query]
        g = [index[r.name] for r in ds.gallery]
        d = np.sqrt(((feats[q][:, None] - feats[g][None]) ** 2).sum(-1))
        per_draw.append(evaluate(d, pids[q], pids[g], np.zeros(len(q)), np.ones(len(g)))["mAP"])
    assert res["mAP"] == pytest.approx(np.mean(per_draw), abs=1e-9)
    assert draws[4].protocol == "vehicleid" and res["repeats"] == 10


def test_market_copy_without_training_split_serves_extract(tmp_path, fake_trees, tiny_cfg):
    from global_model.data.dataset import build_test_set

    root = fake_trees.build_market1501(str(tmp_path / "market"))
    shutil.rmtree(os.path.join(root, "bounding_box_train"))
    cfg = tiny_cfg(str(tmp_path), str(tmp_path / "out"), "DATASETS.TEST", "market1501")
    ds, splits, _ = build_test_set(cfg, root)
    assert ds.train == [] and len(splits["query"]) == 2 and ds.protocol == "market"


def test_aic20_copy_with_only_query_and_gallery(tmp_path, fake_trees, tiny_cfg):
    from global_model.data.dataset import build_test_set

    root = fake_trees.build_aic20(str(tmp_path / "aic"), ground_truth=True)
    shutil.rmtree(os.path.join(root, "image_train"))
    os.remove(os.path.join(root, "train_label.xml"))
    cfg = tiny_cfg(str(tmp_path), str(tmp_path / "out"))
    ds, splits, _ = build_test_set(cfg, root)
    assert len(splits["gallery"]) == 5 and ds.train == []


def test_train_logs_the_dataset_table(tmp_path, fake_trees, tiny_cfg, caplog):
    from global_model.data.dataset import build_train_records

    fake_trees.build_market1501(str(tmp_path / "market"))
    cfg = tiny_cfg(str(tmp_path), str(tmp_path / "out"), "DATASETS.TRAIN", "['market1501=market']")
    with caplog.at_level(logging.INFO, logger="global_model.data"):
        build_train_records(cfg)
    assert "dataset market1501 at" in caplog.text and "train           3       2        3" in caplog.text


def test_aic20_validation_mAP_is_the_challenge_mAP_at_100_with_the_full_mAP_beside(tmp_path, fake_trees):
    root = fake_trees.build_aic20(str(tmp_path / "aic"), ground_truth=True)
    ds = load_dataset("aic20", root)
    rng = np.random.default_rng(1)
    qf, gf = rng.normal(size=(len(ds.query), 4)), rng.normal(size=(len(ds.gallery), 4))
    res, _ = evaluate_features(ds, ds.query, ds.gallery, qf, gf)
    q_pids, g_pids = np.array([r.pid for r in ds.query]), np.array([r.pid for r in ds.gallery])
    d = np.sqrt(((qf[:, None] - gf[None]) ** 2).sum(-1))
    # By hand: the challenge ranks every gallery image (no camera rule), AP over the top 100.
    aps = []
    for q in range(len(qf)):
        hits = g_pids[np.argsort(d[q], kind="stable")][:100] == q_pids[q]
        if hits.any():
            relevant = min((g_pids == q_pids[q]).sum(), 100)
            aps.append(np.sum(np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)) / relevant)
    market = evaluate(d, q_pids, g_pids, [r.camid for r in ds.query], [r.camid for r in ds.gallery])
    assert ds.protocol == "aic" and res["mAP"] == pytest.approx(np.mean(aps), abs=1e-12)
    assert res["full_mAP"] == market["mAP"] and res["mINP"] == market["mINP"]
    assert res["mAP"] != res["full_mAP"]  # the fake tree's same-camera matches count for the challenge only


def test_training_validation_keeps_the_aic_mAP_and_logs_the_full_mAP_beside(tmp_path, fake_trees, monkeypatch):
    """Trainer.validate on an AIC20 split (features stubbed): mAP is the protocol's primary one, full_mAP beside."""
    from types import SimpleNamespace

    from global_model.engine import trainer

    ds = load_dataset("aic20", fake_trees.build_aic20(str(tmp_path / "aic"), ground_truth=True))
    feats = {id(ds.query): np.random.default_rng(1).normal(size=(len(ds.query), 4)),
             id(ds.gallery): np.random.default_rng(2).normal(size=(len(ds.gallery), 4))}
    monkeypatch.setattr(trainer, "extract_features", lambda model, records, *a, **k: (None, feats[id(records)]))
    stub = SimpleNamespace(validation_split=lambda: (ds.query, ds.gallery), _val_set=ds, _val_noted=True,
                           model=None, cfg=None, device=None, progress=False)
    metrics = trainer.Trainer.validate(stub)
    res, _ = evaluate_features(ds, ds.query, ds.gallery, feats[id(ds.query)], feats[id(ds.gallery)])
    assert metrics["mAP"] == res["mAP"] and metrics["full_mAP"] == res["full_mAP"] != res["mAP"]


def test_the_extending_guide_loader_declares_its_protocol_and_subsets(tmp_path):
    """The loader of docs/extending.md, run as written: its protocol and its night subset reach `ensemble fuse`."""
    import json
    import re

    from click.testing import CliRunner

    from ensembles.cli import main
    from global_model.data.datasets import DATASETS
    from post_processing.features import save_features

    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "extending.md"), encoding="utf-8").read()
    section = doc[doc.index("## A dataset loader"):doc.index("## An evaluation protocol")]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    names = {"query": ["0001_c1_0_night.jpg", "0002_c1_0.jpg"],
             "gallery": ["0001_c2_1.jpg", "0002_c2_1.jpg", "0002_c1_2.jpg", "0003_c2_0.jpg"]}
    for split, files in names.items():
        os.makedirs(tmp_path / "toy" / split)
        for n in files:
            open(tmp_path / "toy" / split / n, "wb").close()
    try:
        exec(compile(code, "docs/extending.md", "exec"),
             {"__name__": "global_model.data.datasets.toy_folder", "__package__": "global_model.data.datasets"})
        ds = DATASETS.get("toy_folder")(str(tmp_path / "toy"), train=False)
        assert ds.protocol == "market" and ds.subsets == ("night",) and [r.attrs["night"] for r in ds.query] == [1, 0]
        rng = np.random.default_rng(0)
        for split, files in names.items():
            save_features(str(tmp_path / f"{split}_a.pkl"), files, rng.normal(size=(len(files), 4)).astype(np.float32))
        res = CliRunner().invoke(main, ["fuse", "--dataset", f"toy_folder={tmp_path / 'toy'}", "--features-dir",
                                        str(tmp_path), "--models", "a", "--topk", "3", "--out", str(tmp_path / "r.txt"),
                                        "--metrics-out", str(tmp_path / "m.json")])
        assert res.exit_code == 0, res.output
        data = json.load(open(tmp_path / "m.json"))
        assert "mAP night q" in res.output and "mAP_night" in data
        assert data["protocol"]["name"] == "market" and data["protocol"]["options"] == {"max_rank": 50}
    finally:
        DATASETS.unregister("toy_folder")
