"""FVRID loader: synthetic clear/foggy pairs, real fog, and both with disjoint train ids."""
import os

import pytest

from global_model.data.datasets import DatasetError, load_dataset


@pytest.fixture
def fvrid(tmp_path, fake_trees):
    return fake_trees.build_fvrid(str(tmp_path / "FVRID"))


def test_syn_pairs(fvrid, fake_trees):
    ds = load_dataset("fvrid", fvrid, split="syn")
    assert [(r.name, r.pid, r.camid) for r in ds.train] == [
        ("00000_c013_298403_0.jpg", 0, 13), ("00000_c014_298500_0.jpg", 0, 14), ("00003_c001_000100_0.jpg", 3, 1)]
    for r in ds.train + ds.query + ds.gallery:
        assert r.path == os.path.join(fvrid, "FVRID_syn", os.path.basename(os.path.dirname(r.path)), r.name)
        assert r.path.endswith("_foggy" + os.sep + r.name)
        assert r.clear_path == r.path.replace("_foggy" + os.sep, "_clear" + os.sep)
        assert r.attrs == {"domain": "syn"}
    assert fake_trees.names(ds.gallery) == fake_trees.FVRID_SYN["gallery"]


def test_real_fog_has_no_clear_twins(fvrid):
    ds = load_dataset("fvrid", fvrid, split="real")
    assert [(r.pid, r.camid) for r in ds.train] == [(1, 1), (2, 2)]  # pid -1 dropped from train
    assert [(r.pid, r.camid) for r in ds.gallery] == [(-1, 3), (200, 2)]
    assert all(r.clear_path is None and r.attrs == {"domain": "real"} for r in ds.train + ds.query + ds.gallery)


def test_both_relabels_train_ids_synthetic_first(fvrid):
    ds = load_dataset("fvrid", fvrid, split="both")
    assert [(r.pid, r.camid, r.attrs["domain"]) for r in ds.train] == [
        (0, 13, "syn"), (0, 14, "syn"), (1, 1, "syn"), (2, 1, "real"), (3, 2, "real")]
    assert ds.train[3].clear_path is None and ds.train[0].clear_path is not None
    assert [r.pid for r in ds.query] == [200]  # test ids are kept as in the dataset


def test_foggy_without_clear_twin(fvrid):
    twin = os.path.join(fvrid, "FVRID_syn", "query_clear", "00100_c002_000001_0.jpg")
    os.remove(twin)
    with pytest.raises(DatasetError, match=r"fvrid loader: foggy image .*query_foggy.00100_c002_000001_0.jpg "
                                           r"has no clear twin"):
        load_dataset("fvrid", fvrid)


def test_bad_split(fvrid):
    with pytest.raises(DatasetError, match="split must be one of syn, real, both, clear, got 'fog'"):
        load_dataset("fvrid", fvrid, split="fog")


def test_missing_domain_matters_only_when_asked_for(fvrid):
    os.rename(os.path.join(fvrid, "FVRID_real"), os.path.join(fvrid, "real"))
    assert len(load_dataset("fvrid", fvrid, split="syn").train) == 3
    with pytest.raises(DatasetError, match=r"fvrid loader: missing .*FVRID_real.train_foggy"):
        load_dataset("fvrid", fvrid, split="both")
