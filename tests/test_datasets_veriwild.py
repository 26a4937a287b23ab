"""VeRi-Wild loader on a tiny fake tree (cameras from vehicle_info.txt)."""
import os

import pytest

from global_model.data.datasets import DatasetError, load_dataset


@pytest.fixture
def wild(tmp_path, fake_trees):
    return fake_trees.build_veriwild(str(tmp_path / "VeRi-Wild"))


def test_splits_ids_cameras_and_attributes(wild, fake_trees):
    ds = load_dataset("veriwild", wild)
    assert [(r.name, r.pid, r.camid) for r in ds.train] == [
        ("000001.jpg", 1, 1), ("000002.jpg", 1, 2), ("000003.jpg", 2, 17)]
    assert ds.train[2].path == os.path.join(wild, "images", "00002", "000003.jpg")
    assert ds.train[0].attrs == {"time": "2018-03-11 17:56:00", "model": "Chevrolet#Epica",
                                 "type": "sedan", "color": "gray"}
    # official protocol: the gallery is the whole test list (queries included)
    assert [r.path for r in ds.gallery] == [os.path.join(wild, "images", k + ".jpg") for k in fake_trees.WILD_TEST]
    assert [r.path for r in ds.query] == [os.path.join(wild, "images", k + ".jpg") for k in fake_trees.WILD_QUERY]
    assert [(r.pid, r.camid) for r in ds.query] == [(3, 5), (4, 7)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(3, 5), (3, 6), (4, 7), (4, 7)]


def test_lists_with_extensions_are_tolerated(wild, fake_trees):
    fake_trees.write_text(os.path.join(wild, "train_test_split", "train_list.txt"),
                          "\r\n".join(k + ".jpg" for k in fake_trees.WILD_TRAIN) + "\r\n")
    assert [r.pid for r in load_dataset("veriwild", wild).train] == [1, 1, 2]


def test_missing_camera_names_the_image(wild, fake_trees):
    info = os.path.join(wild, "train_test_split", "vehicle_info.txt")
    with open(info) as f:
        lines = [line for line in f if not line.startswith("00003/000005;")]
    fake_trees.write_text(info, "".join(lines))
    with pytest.raises(DatasetError, match="veriwild loader: image 00003/000005 has no camera line in "
                                           ".*vehicle_info.txt"):
        load_dataset("veriwild", wild)


@pytest.mark.parametrize("test_size, message", [
    (4000, "veriwild loader: test_size must be one of 3000, 5000, 10000, got 4000"),
    (5000, "missing .*test_5000_query.txt \\(expected train_test_split/test_5000_query.txt: the 5000-id query list\\)"),
])
def test_test_size(wild, test_size, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset("veriwild", wild, test_size=test_size)


@pytest.mark.parametrize("spoil, message", [
    (lambda split_dir, trees: os.remove(os.path.join(split_dir, "vehicle_info.txt")),
     "veriwild loader: missing .*vehicle_info.txt"),
    (lambda split_dir, trees: trees.write_text(os.path.join(split_dir, "test_3000_query.txt"),
                                               "00003/000004\n000006\n"),
     "test_3000_query.txt:2: expected 'vid/img', got '000006'"),
])
def test_missing_vehicle_info_and_bad_line(wild, fake_trees, spoil, message):
    spoil(os.path.join(wild, "train_test_split"), fake_trees)
    with pytest.raises(DatasetError, match=message):
        load_dataset("veriwild", wild)
