"""CUHK03 from a fake raw release: cuhk-03.mat written with h5py (object refs, empty cells), the
new-protocol .mat written with scipy.io.savemat (1-based indices), classic splits, the JSON caches and
the errors for broken files."""
import json
import os

import cv2
import numpy as np
import pytest

from global_model.data.datasets import DatasetError, load_dataset


@pytest.fixture(scope="module")
def cuhk03(tmp_path_factory, fake_trees):
    root = str(tmp_path_factory.mktemp("cuhk03"))
    fake_trees.build_cuhk03(root)
    fake_trees.build_cuhk03_protocol(root, "labeled")
    return root


def _rows(records):
    return [(r.name, r.pid, r.camid) for r in records]


def test_new_protocol_extracts_images_and_reads_1_based_indices(cuhk03, fake_trees):
    ds = load_dataset("cuhk03", cuhk03, variant="labeled")
    assert sorted(os.listdir(os.path.join(cuhk03, "images_labeled"))) == sorted(fake_trees.cuhk03_names())
    img = cv2.imread(os.path.join(cuhk03, "images_labeled", "1_001_2_06.png"))
    assert img.shape == (12, 6, 3) and img[0, 0, 2] == 0 and img[0, 0, 0] == 60  # RGB written as BGR
    # index 1 of filelist is the first image: nothing is shifted by one
    assert _rows(ds.train) == [("1_001_1_01.png", 1, 0), ("1_001_1_02.png", 1, 0), ("1_001_2_06.png", 1, 1),
                               ("1_001_2_07.png", 1, 1), ("1_002_1_01.png", 2, 0), ("1_002_2_06.png", 2, 1)]
    assert _rows(ds.query) == [("1_003_1_03.png", 3, 0), ("2_001_2_06.png", 4, 1)]
    assert [r.name for r in ds.gallery] == ["1_003_2_08.png", "1_003_2_09.png", "2_001_1_01.png",
                                            "2_001_2_07.png", "2_002_1_02.png"]
    assert ds.protocol == "market" and "new protocol" in ds.protocol_label
    assert ds.notes == ["cuhk03 labeled: 6/2/5 train/query/gallery images, the published new protocol has "
                        "7368/1400/5328"]
    cache = json.load(open(os.path.join(cuhk03, "splits_new_labeled.json")))
    assert cache["data"]["query"] == [["1_003_1_03.png", 3, 0], ["2_001_2_06.png", 4, 1]]


def test_the_json_cache_is_used_and_rebuilt_when_the_mat_changes(cuhk03, fake_trees):
    load_dataset("cuhk03", cuhk03, variant="labeled")
    cache = os.path.join(cuhk03, "splits_new_labeled.json")
    data = json.load(open(cache))
    data["data"]["query"] = data["data"]["query"][:1]
    json.dump(data, open(cache, "w"))
    assert len(load_dataset("cuhk03", cuhk03, variant="labeled").query) == 1  # read from the cache
    path = fake_trees.build_cuhk03_protocol(cuhk03, "labeled")
    os.utime(path, ns=(1, 1))
    assert len(load_dataset("cuhk03", cuhk03, variant="labeled").query) == 2


def test_classic_split_tests_100_ids_as_query_and_gallery(cuhk03):
    ds = load_dataset("cuhk03", cuhk03, variant="detected", protocol="classic", split=1)
    assert ds.query == ds.gallery
    assert _rows(ds.query) == [("1_002_1_01.png", 2, 0), ("1_002_2_06.png", 2, 1), ("2_002_1_02.png", 5, 0)]
    assert {r.pid for r in ds.train} == {1, 3, 4} and len(ds.train) == 10
    assert ds.protocol == "cuhk03" and ds.protocol_options == {"repeats": 10}
    other = load_dataset("cuhk03", cuhk03, variant="detected", protocol="classic", split=0)
    assert {r.pid for r in other.query} == {1, 4}  # (pair 1, person 1) and (pair 2, person 1)
    assert os.path.isfile(os.path.join(cuhk03, "splits_classic_detected.json"))


@pytest.mark.parametrize("options, message", [
    ({"variant": "both"}, "variant must be one of detected, labeled"),
    ({"protocol": "old"}, "protocol must be one of new, classic"),
    ({"protocol": "classic", "split": 20}, "split must be one of 0, 1, .*19, got 20"),
    ({"variant": "detected"}, "missing .*cuhk03_new_protocol_config_detected.mat"),
])
def test_bad_options(cuhk03, options, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset("cuhk03", cuhk03, **options)


def test_an_index_of_zero_is_named_as_not_1_based(tmp_path, fake_trees):
    root = str(tmp_path)
    fake_trees.build_cuhk03(root)
    fake_trees.build_cuhk03_protocol(root, "labeled", query_idx=[0, 7])
    with pytest.raises(DatasetError, match=r"query_idx holds 0, outside 1\.\.13 \(the indices are 1-based"):
        load_dataset("cuhk03", root, variant="labeled")


@pytest.mark.parametrize("which", ["raw", "protocol"])
@pytest.mark.parametrize("damage", ["html", "truncated"])
def test_broken_mat_files_are_named(tmp_path, fake_trees, which, damage):
    root = str(tmp_path)
    fake_trees.build_cuhk03(root)
    protocol = fake_trees.build_cuhk03_protocol(root, "labeled")
    path = os.path.join(root, "cuhk03_release", "cuhk-03.mat") if which == "raw" else protocol
    if damage == "html":
        open(path, "wb").write(b"<!DOCTYPE html>\n<html><head><title>Google Drive</title></head></html>\n")
        expected = "is an HTML page, not a MATLAB file"
    else:
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
        expected = "is truncated or damaged"
    with pytest.raises(DatasetError, match=f"{os.path.basename(path)} {expected}"):
        load_dataset("cuhk03", root, variant="labeled")


def test_cuhk03_np_folders_per_variant(tmp_path, fake_trees):
    root = fake_trees.build_cuhk03_np(str(tmp_path / "cuhk03-np"))
    ds = load_dataset("cuhk03_np", root, variant="labeled")
    assert _rows(ds.query) == [("0010_c1_4.png", 10, 0), ("0011_c2_5.png", 11, 1)]
    assert len(ds.train) == 3 and len(ds.gallery) == 3
    assert all("/labeled/" in r.path for r in ds.train + ds.query + ds.gallery)
    assert "published new protocol has 7368/1400/5328" in ds.notes[0]
    assert "/detected/" in load_dataset("cuhk03_np", root).query[0].path  # default variant
    assert load_dataset("cuhk03_np", root, train=False).train == []


def test_classic_metric_on_the_loaded_split_is_single_shot(cuhk03):
    from global_model.data.datasets.scoring import evaluate_features

    ds = load_dataset("cuhk03", cuhk03, variant="detected", protocol="classic", split=1)
    feats = np.eye(8)[[r.pid for r in ds.query]] + 0.01 * np.arange(len(ds.query))[:, None]
    res, _ = evaluate_features(ds, ds.query, ds.gallery, feats, feats)
    assert res["mAP"] == pytest.approx(1.0) and res["cmc"][0] == pytest.approx(1.0)


def test_extracted_images_and_caches_serve_without_the_raw_file(tmp_path, fake_trees):
    root = str(tmp_path)
    fake_trees.build_cuhk03(root)
    fake_trees.build_cuhk03_protocol(root, "labeled")
    first = load_dataset("cuhk03", root, variant="labeled", protocol="classic", split=3)
    load_dataset("cuhk03", root, variant="labeled")
    os.remove(os.path.join(root, "cuhk03_release", "cuhk-03.mat"))
    assert load_dataset("cuhk03", root, variant="labeled", protocol="classic", split=3).query == first.query
    assert len(load_dataset("cuhk03", root, variant="labeled").query) == 2
    with pytest.raises(DatasetError, match="missing .*cuhk-03.mat"):
        load_dataset("cuhk03", root, variant="detected", protocol="classic")
