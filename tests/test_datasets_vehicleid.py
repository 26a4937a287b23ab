"""VehicleID loader and its 10-repeat query/gallery protocol on a tiny fake tree."""
import os

import pytest

from global_model.data.datasets import DatasetError, load_dataset
from global_model.data.datasets.vehicleid import vehicleid_splits


@pytest.fixture
def vid(tmp_path, fake_trees):
    return fake_trees.build_vehicleid(str(tmp_path / "VehicleID"))


def test_train_list_quirks(vid):
    ds = load_dataset("vehicleid", vid)
    assert [(r.name, r.pid) for r in ds.train] == [("0000001.jpg", 1), ("0000002.jpg", 1), ("0000003.jpg", 2)]
    assert ds.train[0].path == os.path.join(vid, "image", "0000001.jpg")


def test_one_gallery_image_per_id_rest_queries(vid, fake_trees):
    ds = load_dataset("vehicleid", vid, repeat=3)
    assert sorted(r.pid for r in ds.gallery) == [10, 11, 12]
    assert len(ds.query) == 9
    assert sorted(r.name for r in ds.query + ds.gallery) == sorted(f"{n}.jpg" for n, _ in fake_trees.VID_TEST)
    assert not {r.path for r in ds.query} & {r.path for r in ds.gallery}
    assert {r.camid for r in ds.query} == {0} and {r.camid for r in ds.gallery} == {1}
    for r in ds.query + ds.gallery:  # every image keeps its listed id
        assert dict((f"{n}.jpg", v) for n, v in fake_trees.VID_TEST)[r.name] == r.pid


def test_repeats_are_seeded_and_differ(vid):
    draws = list(vehicleid_splits(vid, 800, repeats=10, seed=0))
    assert len(draws) == 10
    galleries = [tuple(r.name for r in g) for _, g in draws]
    assert len(set(galleries)) > 1
    for r in (0, 7):
        ds = load_dataset("vehicleid", vid, test_size=800, repeat=r, seed=0)
        assert (ds.query, ds.gallery) == draws[r]
    assert load_dataset("vehicleid", vid, repeat=2, seed=5).gallery == load_dataset("vehicleid", vid, repeat=2,
                                                                                     seed=5).gallery


@pytest.mark.parametrize("kwargs, message", [
    ({"test_size": 500}, "vehicleid loader: test_size must be one of 800, 1600, 2400, got 500"),
    ({"test_size": "1600x"}, "vehicleid loader: test_size must be one of 800, 1600, 2400, got '1600x'"),
    ({"repeat": 10}, "vehicleid loader: repeat must be one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, got 10"),
])
def test_bad_arguments(vid, kwargs, message):
    with pytest.raises(DatasetError) as err:
        load_dataset("vehicleid", vid, **kwargs)
    assert str(err.value) == message


def test_missing_test_list(vid):
    path = os.path.join(vid, "train_test_split", "test_list_1600.txt")
    with pytest.raises(DatasetError) as err:
        load_dataset("vehicleid", vid, test_size=1600)
    assert str(err.value) == (f"vehicleid loader: missing {path} "
                              f"(expected train_test_split/test_list_1600.txt: the 1600-id test list)")


@pytest.mark.parametrize("train_list, message", [
    ("0000001 1\n0000002\n", "train_list.txt:2: expected '<image> <vehicle_id>', got '0000002'"),
    ("0000001 1\n0000099 1\n", "vehicleid loader: images listed in .* missing from .*image: 0000099.jpg"),
])
def test_bad_line_and_missing_image(vid, train_list, message, fake_trees):
    fake_trees.write_text(os.path.join(vid, "train_test_split", "train_list.txt"), train_list)
    with pytest.raises(DatasetError, match=message):
        load_dataset("vehicleid", vid)
