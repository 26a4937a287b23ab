"""AIC20 / CityFlow-ReID loader and the VehicleX simulation set, on tiny fake trees."""
import os

import pytest

from global_model.data.datasets import DatasetError, load_dataset


@pytest.fixture
def aic(tmp_path, fake_trees):
    return fake_trees.build_aic20(str(tmp_path / "AIC20_ReID"))


def test_train_labels_cameras_and_tracks(aic):
    ds = load_dataset("aic20", aic)
    assert [(r.name, r.pid, r.camid, r.trackid) for r in ds.train] == [
        ("000001.jpg", 1, 1, 0), ("000002.jpg", 1, 2, 0), ("000003.jpg", 347, 26, 1),
        ("000004.jpg", 347, 26, 1), ("000005.jpg", 5, 10, -1), ("000006.jpg", 5, 10, -1)]
    assert ds.train[0].path == os.path.join(aic, "image_train", "000001.jpg")


def test_query_gallery_keep_name_file_order_and_tracks(aic, fake_trees):
    ds = load_dataset("aic20", aic)
    assert fake_trees.names(ds.query) == fake_trees.AIC_QUERY  # not sorted: track2.txt rows follow name_query.txt
    assert fake_trees.names(ds.gallery) == fake_trees.AIC_TEST
    assert ds.gallery[2].path == os.path.join(aic, "image_test", "000003.jpg")
    assert {(r.pid, r.camid) for r in ds.query + ds.gallery} == {(-1, -1)}
    # test_track.txt: line 0 = 000002 000004, blank line skipped, line 1 = 000001 000003; 000005 in none
    assert [r.trackid for r in ds.gallery] == [1, 0, 1, 0, -1]
    assert [r.trackid for r in ds.query] == [-1, -1, -1]
    assert ds.extra["tracks"] == [["000002.jpg", "000004.jpg"], ["000001.jpg", "000003.jpg"]]
    assert ds.extra["has_ground_truth"] is False


def test_ground_truth_labels_when_present(tmp_path, fake_trees):
    ds = load_dataset("aic20", fake_trees.build_aic20(str(tmp_path / "a"), ground_truth=True))
    assert ds.extra["has_ground_truth"] is True
    assert [(r.pid, r.camid) for r in ds.query] == [(10, 3), (11, 4), (10, 5)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(10, 3), (11, 3), (10, 3), (11, 3), (12, 4)]


def test_half_ground_truth_is_an_error(tmp_path, fake_trees):
    root = fake_trees.build_aic20(str(tmp_path / "a"), ground_truth=True)
    os.remove(os.path.join(root, "test_label.xml"))
    with pytest.raises(DatasetError, match="found .*query_label.xml but missing .*test_label.xml"):
        load_dataset("aic20", root)


def test_ground_truth_must_cover_every_listed_image(tmp_path, fake_trees):
    root = fake_trees.build_aic20(str(tmp_path / "a"), ground_truth=True)
    with open(os.path.join(root, "test_label.xml"), "wb") as f:
        f.write(fake_trees.label_xml([{"imageName": "000001.jpg", "vehicleID": "1", "cameraID": "c1"}]))
    with pytest.raises(DatasetError, match="test_label.xml has no <Item> for 000002.jpg"):
        load_dataset("aic20", root)


def test_lists_only_mode_for_the_ensemble(aic, fake_trees):
    for folder in ("image_train", "image_query", "image_test"):
        for name in os.listdir(os.path.join(aic, folder)):
            os.remove(os.path.join(aic, folder, name))
        os.rmdir(os.path.join(aic, folder))
    with pytest.raises(DatasetError, match="aic20 loader: missing .*image_train"):
        load_dataset("aic20", aic)
    ds = load_dataset("aic20", aic, require_images=False)
    assert fake_trees.names(ds.query) == fake_trees.AIC_QUERY and len(ds.train) == 6
    os.remove(os.path.join(aic, "train_label.xml"))
    assert load_dataset("aic20", aic, require_images=False).train == []


def test_simulation_set_is_train_only(tmp_path, fake_trees):
    sim = load_dataset("aic20_sim", fake_trees.build_aic20_sim(str(tmp_path / "sim")))
    assert sim.query == [] and sim.gallery == []
    assert [(r.pid, r.camid) for r in sim.train] == [(1, 1), (2, 2)]
    assert sim.train[0].attrs == {"colorID": 3, "typeID": 2, "orientation": 12.5}
    assert sim.train[1].attrs["orientation"] == 270.0


@pytest.mark.parametrize("missing, expected", [
    ("name_query.txt", "name_query.txt: the query image names"),
    ("name_test.txt", "name_test.txt: the gallery image names"),
    ("train_label.xml", "train_label.xml: the training labels"),
    ("image_query", "image_query/ with the query images"),
])
def test_missing_parts_are_named(aic, missing, expected):
    path = os.path.join(aic, missing)
    if os.path.isdir(path):
        for name in os.listdir(path):
            os.remove(os.path.join(path, name))
        os.rmdir(path)
    else:
        os.remove(path)
    with pytest.raises(DatasetError) as err:
        load_dataset("aic20", aic)
    assert str(err.value) == f"aic20 loader: missing {path} (expected {expected})"


def test_listed_image_missing_from_folder(aic):
    os.remove(os.path.join(aic, "image_test", "000004.jpg"))
    with pytest.raises(DatasetError, match=r"aic20 loader: images listed in name_test.txt are missing from "
                                           r".*image_test: 000004.jpg"):
        load_dataset("aic20", aic)


def test_track_naming_an_unknown_image(aic, fake_trees):
    fake_trees.write_text(os.path.join(aic, "test_track.txt"), "000001.jpg \n000009.jpg 000002.jpg \n")
    with pytest.raises(DatasetError, match="test_track.txt: track 2 lists 000009.jpg"):
        load_dataset("aic20", aic)


def test_train_name_without_label(aic, fake_trees):
    fake_trees.write_jpeg(os.path.join(aic, "image_train", "000007.jpg"))
    with open(os.path.join(aic, "name_train.txt"), "a") as f:
        f.write("000007.jpg\n")
    with pytest.raises(DatasetError, match="name_train.txt lists 000007.jpg, which has no <Item>"):
        load_dataset("aic20", aic)
