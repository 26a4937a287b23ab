"""Market-1501 loader: junk and distractor ids, 0-based cameras, stray files."""
import os

import pytest

from global_model.data.datasets import DatasetError, load_dataset


@pytest.fixture
def market(tmp_path, fake_trees):
    return fake_trees.build_market1501(str(tmp_path / "Market-1501-v15.09.15"))


def test_junk_dropped_distractors_gallery_only(market, fake_trees):
    ds = load_dataset("market1501", market)
    assert [(r.name, r.pid, r.camid) for r in ds.train] == [
        ("0002_c1s1_000451_03.jpg", 2, 0), ("0002_c2s1_000301_01.jpg", 2, 1), ("0007_c3s1_000001_01.jpg", 7, 2)]
    assert [(r.pid, r.camid) for r in ds.query] == [(2, 0), (7, 5)]
    assert fake_trees.names(ds.gallery) == ["0000_c6s1_000000_02.jpg", "0002_c2s1_000801_01.jpg",
                                            "0007_c1s1_000002_01.jpg"]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(0, 5), (2, 1), (7, 0)]
    assert ds.gallery[0].path == os.path.join(market, "bounding_box_test", "0000_c6s1_000000_02.jpg")


@pytest.mark.parametrize("spoil, message", [
    (lambda root, trees: trees.write_jpeg(os.path.join(root, "query", "person.jpg")),
     r"market1501 loader: cannot parse .*query.person.jpg"),
    (lambda root, trees: os.rename(os.path.join(root, "bounding_box_test"), os.path.join(root, "test")),
     r"market1501 loader: missing .*bounding_box_test \(expected bounding_box_test/ with the gallery images\)"),
])
def test_bad_name_and_missing_folder(market, fake_trees, spoil, message):
    spoil(market, fake_trees)
    with pytest.raises(DatasetError, match=message):
        load_dataset("market1501", market)
