"""A dataset loader registered from this file alone trains and extracts through the public commands."""
import os
import re

import cv2
import numpy as np
import pytest

from global_model.cli import main
from global_model.data.datasets import DATASETS, DatasetSplits
from global_model.data.records import ImageRecord
from post_processing.features import load_features

IDS, PER_ID = 8, 4
_NAME = re.compile(r"(\d+)_c(\d+)_\d+\.jpg$")


def load_toy_folder(root):
    """``<root>/{train,query,gallery}/PPPP_cC_N.jpg``: the kind of folder a newcomer's loader reads."""
    splits = {}
    for split in ("train", "query", "gallery"):
        folder = os.path.join(root, split)
        splits[split] = [ImageRecord(os.path.join(folder, n), int(m.group(1)), int(m.group(2)))
                         for n in sorted(os.listdir(folder)) for m in [_NAME.match(n)] if m]
    return DatasetSplits("toy_folder", root, **splits)


def _write_tree(root):
    rng = np.random.default_rng(0)
    for pid in range(IDS):
        colour = rng.integers(0, 256, 3)
        for n in range(PER_ID):
            split = "train" if pid < IDS - 2 else ("query" if n == 0 else "gallery")
            image = np.clip(colour + rng.normal(0, 20, (40, 30, 3)), 0, 255).astype(np.uint8)
            os.makedirs(os.path.join(root, split), exist_ok=True)
            cv2.imwrite(os.path.join(root, split, f"{pid:04d}_c{n % 2}_{n}.jpg"), image)


@pytest.fixture
def toy_folder(tmp_path):
    DATASETS.register("toy_folder", load_toy_folder)
    root = str(tmp_path / "toy")
    _write_tree(root)
    yield root
    DATASETS.unregister("toy_folder")


@pytest.fixture
def train_args(tiny_config, tiny_overrides, short_run):
    """``train_args(root, out, *extra)``: a short ``train`` command line on the toy folder at ``root``."""

    def make(root, out, *extra):
        return ["train", "--config", tiny_config, "--no-progress",
                *tiny_overrides(root, out, "DATASETS.TRAIN", '["toy_folder"]', "DATASETS.TEST", "toy_folder",
                                "SOLVER.IMS_PER_BATCH", "16", *short_run, *extra)]

    return make


def test_registered_loader_trains_and_extracts(toy_folder, train_args, tmp_path):
    out = str(tmp_path / "run")
    assert main(train_args(toy_folder, out)) == 0
    feats = str(tmp_path / "feats")
    assert main(["extract", "--checkpoint", os.path.join(out, "model_final.pth"), "--out-dir", feats,
                 "--name", "toy", "--no-progress"]) == 0
    query = load_features(os.path.join(feats, "query_toy.pkl"))
    assert query.names == sorted(os.listdir(os.path.join(toy_folder, "query")))
    assert len(load_features(os.path.join(feats, "gallery_toy.pkl")).names) == 2 * (PER_ID - 1)


def test_misspelt_loader_name_is_a_usage_error_with_close_matches(toy_folder, train_args, tmp_path, capsys):
    assert main(train_args(toy_folder, str(tmp_path / "run"), "DATASETS.TRAIN", '["toy_foldr"]')) == 2
    assert "unknown dataset 'toy_foldr'; did you mean 'toy_folder'" in capsys.readouterr().err
