"""The `folder` and `csv` loaders for your own images, the evaluation without cameras, the dataset
table and the loader listing."""
import os

import numpy as np
import pytest

from global_model.data.datasets import DatasetError, describe_loader, load_dataset, load_dataset_entry, split_table
from global_model.data.datasets.scoring import NO_CAMERAS_NOTE, evaluate_features, evaluation_cameras


def _rows(records):
    return [(r.name, r.pid, r.camid) for r in records]


def test_folder_identities_and_cameras_from_a_regex(tmp_path, fake_trees):
    root = fake_trees.build_folder(str(tmp_path / "own"))
    ds = load_dataset("folder", root, camera=r"c(\d+)_")
    assert _rows(ds.train) == [("c1_a.jpg", 0, 1), ("c2_b.jpg", 0, 2), ("c1_c.jpg", 1, 1)]
    assert _rows(ds.query) == [("c1_q1.jpg", 7, 1), ("c2_q2.jpg", 42, 2)]
    assert _rows(ds.gallery) == [("c1_g2.jpg", 7, 1), ("c2_g1.jpg", 7, 2), ("c1_g3.jpg", 42, 1),
                                 ("c3_unknown.jpg", -1, 3)]
    assert {r.camid for r in load_dataset("folder", root).query} == {-1}
    with pytest.raises(DatasetError, match=r"camera='cam' needs a group"):
        load_dataset("folder", root, camera="cam")
    with pytest.raises(DatasetError, match=r"camera pattern 'x\(\\d\)' finds no camera number in c1_a.jpg"):
        load_dataset("folder", root, camera=r"x(\d)")


def test_folder_refuses_two_images_with_one_name(tmp_path, fake_trees):
    root = fake_trees.build_folder(str(tmp_path / "own"))
    fake_trees.write_jpeg(os.path.join(root, "gallery", "042", "c2_g1.jpg"))
    with pytest.raises(DatasetError, match="gallery has two images named c2_g1.jpg"):
        load_dataset("folder", root)


def test_csv_paths_relative_to_the_csv_header_and_subsets(tmp_path, fake_trees):
    root = fake_trees.build_csv(str(tmp_path / "own"))
    ds = load_dataset("csv", root, subsets="night")
    assert _rows(ds.train) == [("t1.jpg", 5, 1), ("t2.jpg", 5, 2), ("t3.jpg", 9, 1)]
    assert ds.query[0].path == os.path.join(root, "img", "q1.jpg") and ds.query[0].trackid == -1
    assert [r.attrs["night"] for r in ds.query] == [True, False] and ds.subsets == ("night",)
    with pytest.raises(DatasetError, match="subsets names column.* rain"):
        load_dataset("csv", root, subsets="rain")


@pytest.mark.parametrize("text, message", [
    ("img/g1.jpg,x,1\n", r"gallery.csv:1: column pid must be an integer, got 'x'"),
    ("img/g1.jpg\n", r"gallery.csv:1: expected path,pid,camid,trackid"),
    ("img/nope.jpg,1,1\n", r"gallery.csv:1: image .*nope.jpg does not exist"),
])
def test_csv_errors_name_the_line(tmp_path, fake_trees, text, message):
    root = fake_trees.build_csv(str(tmp_path / "own"))
    fake_trees.write_text(os.path.join(root, "gallery.csv"), text)
    with pytest.raises(DatasetError, match=message):
        load_dataset("csv", root)


def test_without_cameras_only_the_query_image_itself_is_removed(tmp_path, fake_trees):
    root = fake_trees.build_csv(str(tmp_path / "own"), cameras=False)
    fake_trees.write_text(os.path.join(root, "gallery.csv"),
                          "img/q1.jpg,5,\nimg/g1.jpg,5,\nimg/g2.jpg,9,\nimg/g3.jpg,9,\n")
    ds = load_dataset("csv", root)
    q_cams, g_cams, note = evaluation_cameras(ds.query, ds.gallery)
    assert note == NO_CAMERAS_NOTE and q_cams.tolist() == [0, 1] and g_cams.tolist() == [0, -1, -1, -1]
    # query 0's own image would be its best match: it is removed, g1 (same id) is then first
    qf = np.array([[0.0], [10.0]])
    gf = np.array([[0.0], [1.0], [9.0], [10.0]])
    res, notes = evaluate_features(ds, ds.query, ds.gallery, qf, gf)
    assert res["mAP"] == pytest.approx(1.0) and res["num_valid"] == 2 and NO_CAMERAS_NOTE in notes


def test_test_only_data_and_the_table(tmp_path, fake_trees):
    root = fake_trees.build_csv(str(tmp_path / "own"))
    os.remove(os.path.join(root, "train.csv"))
    ds = load_dataset_entry("csv=own", str(tmp_path))
    assert ds.train == [] and len(ds.query) == 2
    table = split_table(load_dataset_entry("folder(camera='c(\\d)_')=f", str(tmp_path),
                                           fake_trees.build_folder(str(tmp_path / "f"))))
    assert "train           3       2        2" in table and "gallery         4       2        3" in table


def test_every_loader_is_described_with_options_and_protocol():
    info = {name: describe_loader(name) for name in
            ("cuhk03", "cuhk03_np", "dukemtmc", "msmt17", "prw", "folder", "csv", "vehicleid", "market1501")}
    assert info["cuhk03"]["options"] == {"variant": "detected", "protocol": "new", "split": 0}
    assert "single-shot" in info["cuhk03"]["protocol"] and "10 query/gallery draws" in info["vehicleid"]["protocol"]
    assert info["csv"]["options"] == {"subsets": ""} and "path,pid,camid" in info["csv"]["layout"]
    with pytest.raises(DatasetError, match="does not take these options.*its options are camera"):
        load_dataset_entry("folder(cam=1)=x", ".", ".")


def test_python_m_global_model_datasets_lists_every_loader(capsys):
    from global_model.cli import main

    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "cuhk03\n    layout:   cuhk03_release/cuhk-03.mat" in out
    assert "options:  variant='detected', protocol='new', split=0" in out and "\nfolder\n" in out
