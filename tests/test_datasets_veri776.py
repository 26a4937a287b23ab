"""VeRi-776 loader on a tiny fake tree."""
import os

import pytest

from global_model.data.datasets import DatasetError, load_dataset


@pytest.fixture
def veri(tmp_path, fake_trees):
    return fake_trees.build_veri776(str(tmp_path / "VeRi"))


def test_ids_and_cameras_from_names_in_list_order(veri, fake_trees):
    ds = load_dataset("veri776", veri)
    assert fake_trees.names(ds.train) == fake_trees.VERI_TRAIN  # name_train.txt order, not sorted
    assert [(r.pid, r.camid) for r in ds.train] == [(2, 3), (1, 1), (1, 2)]
    assert [(r.name, r.pid, r.camid) for r in ds.query] == [("0002_c002_00030600_0.jpg", 2, 2)]
    assert ds.query[0].path == os.path.join(veri, "image_query", "0002_c002_00030600_0.jpg")
    # no name_test.txt: sorted listing, Thumbs.db ignored
    assert fake_trees.names(ds.gallery) == sorted(fake_trees.VERI_TEST)
    assert [(r.pid, r.camid) for r in ds.gallery] == [(2, 2), (2, 3), (5, 1)]


def test_attributes_from_label_xml(veri):
    ds = load_dataset("veri776", veri)
    assert ds.train[0].attrs == {"colorID": 1, "typeID": 4}
    assert ds.query[0].attrs == {"colorID": 2, "typeID": 1}  # query names are test names
    os.remove(os.path.join(veri, "test_label.xml"))
    assert load_dataset("veri776", veri).gallery[0].attrs == {}


def test_missing_folder(veri):
    os.rename(os.path.join(veri, "image_query"), os.path.join(veri, "query"))
    with pytest.raises(DatasetError) as err:
        load_dataset("veri776", veri)
    assert str(err.value) == (f"veri776 loader: missing {os.path.join(veri, 'image_query')} "
                              f"(expected image_query/ with the query images)")


def test_listed_image_missing(veri, fake_trees):
    missing = fake_trees.VERI_TRAIN[1]
    os.remove(os.path.join(veri, "image_train", missing))
    with pytest.raises(DatasetError, match=f"name_train.txt are missing from .*image_train: {missing}"):
        load_dataset("veri776", veri)


def test_unparsable_name(veri, fake_trees):
    fake_trees.write_jpeg(os.path.join(veri, "image_test", "car_42.jpg"))
    with pytest.raises(DatasetError, match=r"veri776 loader: cannot parse .*image_test.car_42.jpg: "
                                           r"expected a name like 0002_c002_00030600_0.jpg"):
        load_dataset("veri776", veri)
