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
