"""DukeMTMC-reID, PRW-reid and MSMT17 loaders on fake trees: counts, junk/distractor rules, cameras,
test-only copies."""
import os
import shutil

import pytest

from global_model.data.datasets import DatasetError, load_dataset


def _rows(records):
    return [(r.name, r.pid, r.camid) for r in records]


def test_dukemtmc(tmp_path, fake_trees):
    root = fake_trees.build_market_layout(str(tmp_path / "duke"), fake_trees.DUKE)
    ds = load_dataset("dukemtmc", root)
    assert _rows(ds.train) == [("0001_c2_f0046182.jpg", 1, 1), ("0001_c5_f0051341.jpg", 1, 4),
                               ("0003_c1_f0044158.jpg", 3, 0)]
    assert len(ds.query) == 2 and len(ds.gallery) == 4 and ds.protocol == "market"


def test_prw_unlabelled_boxes_are_gallery_distractors_only(tmp_path, fake_trees):
    root = fake_trees.build_market_layout(str(tmp_path / "prw"), fake_trees.PRW)
    ds = load_dataset("prw", root)
    assert [r.pid for r in ds.train] == [479, 479]
    assert _rows(ds.query) == [("501_c1s1_000011.jpg", 501, 0)]
    assert sorted(r.pid for r in ds.gallery) == [-2, 501, 501]


def test_msmt17_lists_val_joins_train_and_cameras_from_the_name(tmp_path, fake_trees):
    root = fake_trees.build_msmt17(str(tmp_path / "msmt"))
    ds = load_dataset("msmt17", root)
    assert _rows(ds.train) == [("0000_000_01_0303morning_0015_0.jpg", 0, 0),
                               ("0000_001_05_0303morning_0016_0.jpg", 0, 4),
                               ("0001_000_12_0303noon_0001_1.jpg", 1, 11), ("0002_000_03_0303noon_0002_0.jpg", 2, 2)]
    assert ds.train[0].path == os.path.join(root, "train", "0000", "0000_000_01_0303morning_0015_0.jpg")
    assert _rows(ds.gallery)[0] == ("0000_001_15_0303afternoon_0002_0.jpg", 0, 14)
    assert len(load_dataset("msmt17", root, use_val=False).train) == 3
    v2 = fake_trees.build_msmt17(str(tmp_path / "msmt_v2"), v2=True)
    assert "mask_test_v2" in load_dataset("msmt17", v2).query[0].path


def test_msmt17_errors_name_the_line_and_the_missing_image(tmp_path, fake_trees):
    root = fake_trees.build_msmt17(str(tmp_path / "msmt"))
    fake_trees.write_text(os.path.join(root, "list_query.txt"), "0000/0000_000_01_a_0001_0.jpg 0\nbroken\n")
    with pytest.raises(DatasetError, match=r"list_query.txt:2: expected '<pid>/<PPPP_NNN_CC_...>.jpg <pid>'"):
        load_dataset("msmt17", root)
    fake_trees.write_text(os.path.join(root, "list_query.txt"), "0000/0000_000_01_gone_0001_0.jpg 0\n")
    with pytest.raises(DatasetError, match=r"images listed in .*list_query.txt are missing .*0000_000_01_gone"):
        load_dataset("msmt17", root)


@pytest.mark.parametrize("name, build", [("market1501", "MARKET"), ("dukemtmc", "DUKE"), ("prw", "PRW")])
def test_a_copy_without_the_training_split_serves_query_and_gallery(tmp_path, fake_trees, name, build):
    tree = getattr(fake_trees, build)
    root = fake_trees.build_market_layout(str(tmp_path / name), tree)
    shutil.rmtree(os.path.join(root, "bounding_box_train"))
    ds = load_dataset(name, root, train=False)
    assert ds.train == [] and ds.query and ds.gallery
    with pytest.raises(DatasetError, match="missing .*bounding_box_train"):
        load_dataset(name, root)
