"""Persistent gallery index: ``ensemble index build`` / ``add`` and ``ensemble search --index`` give
the same matches as searching the feature files; ``add`` keeps earlier images' ids and results; bad
files and mismatched features are refused with the file named."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from ensembles.cli import main
from ensembles.index import IndexFileError, load_gallery_index
from post_processing.features import save_features

try:
    import faiss  # noqa: F401
    BACKENDS = ["exact", "faiss"]
except ImportError:
    BACKENDS = ["exact", pytest.param("faiss", marks=pytest.mark.skip(reason="faiss is not installed"))]


def run(*args, code=0):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == code, res.output + repr(res.exception)
    return res


def rows(out):
    """The rows of ``out/result.csv`` (search writes a folder)."""
    with open(out / "result.csv", newline="") as f:
        return [(r["query_filename"], r["predicted_path"], r["rank"], round(float(r["distance"]), 4))
                for r in csv.DictReader(f)]


@pytest.fixture
def feats(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((430, 24)).astype(np.float32)
    names = [f"{i:05d}.jpg" for i in range(430)]
    save_features(str(tmp_path / "gallery_all.pkl"), names[:400], x[:400])
    save_features(str(tmp_path / "gallery_old.pkl"), names[:300], x[:300])
    save_features(str(tmp_path / "gallery_new.pkl"), names[300:400], x[300:400])
    save_features(str(tmp_path / "query.pkl"), names[400:], x[400:])
    return tmp_path


@pytest.mark.parametrize("knn", BACKENDS)
def test_index_search_equals_feature_search_and_add_keeps_earlier_results(feats, knn):
    t = feats
    search = ("search", "--query-features", t / "query.pkl", "--gallery-dir", "g", "--topk", 8)
    run(*search, "--gallery-features", t / "gallery_all.pkl", "--out", t / "plain")
    run(*search, "--gallery-features", t / "gallery_old.pkl", "--out", t / "plain_old")
    res = run("index", "build", "--features", t / "gallery_old.pkl", "--out", t / "g.index", "--knn", knn)
    assert "300 images" in res.output
    run(*search, "--index", t / "g.index", "--out", t / "old")
    assert rows(t / "old") == rows(t / "plain_old")
    res = run("index", "add", "--index", t / "g.index", "--features", t / "gallery_new.pkl", "--out", t / "g2.index")
    assert "100 images added, 400 in all" in res.output
    again = load_gallery_index(str(t / "g.index"))  # the original file is untouched by --out
    assert len(again.names) == 300 and again.meta["knn"] == knn
    grown = load_gallery_index(str(t / "g2.index"))
    assert grown.names[:300] == again.names and grown.names[300] == "00300.jpg"
    queries = np.random.default_rng(1).standard_normal((10, 24)).astype(np.float32)
    old_idx, _ = again.search(queries, 5)
    new_idx, _ = grown.search(queries, 400)
    for old_row, new_row in zip(old_idx, new_idx):  # earlier images keep their ids and their order
        np.testing.assert_array_equal(new_row[new_row < 300][:5], old_row)
    run(*search, "--index", t / "g2.index", "--out", t / "grown")
    assert rows(t / "grown") == rows(t / "plain")


def test_search_with_approximate_knn_and_index_options_are_checked(feats):
    t = feats
    search = ("search", "--query-features", t / "query.pkl", "--gallery-dir", "g", "--topk", 5, "--out", t / "r")
    run("index", "build", "--features", t / "gallery_all.pkl", "--out", t / "g.index", "--distance", "euclidean")
    assert "--gallery-dir needs --checkpoint" in run(*search, code=2).output
    assert "--gallery-features or --index" in run(*search, "--index", t / "g.index", "--gallery-features",
                                                  t / "gallery_all.pkl", code=2).output
    assert "its own backend" in run(*search, "--index", t / "g.index", "--rerank", code=2).output
    assert "--knn applies without it" in run(*search, "--gallery-features", t / "gallery_all.pkl", "--rerank",
                                             "--knn", "faiss", code=2).output
    assert "its own backend" in run(*search, "--index", t / "g.index", "--knn", "exact", code=2).output
    assert "searches with euclidean" in run(*search, "--index", t / "g.index", "--distance", "cosine", code=2).output
    assert "unknown knn backend 'flat'" in run(*search, "--gallery-features", t / "gallery_all.pkl", "--knn", "flat",
                                                code=2).output
    run(*search, "--gallery-features", t / "gallery_all.pkl", "--knn", "exact")


def test_bad_index_files_and_mismatched_features_are_refused(feats):
    t = feats
    run("index", "build", "--features", t / "gallery_old.pkl", "--out", t / "g.index")
    res = run("index", "add", "--index", t / "g.index", "--features", t / "gallery_all.pkl", code=1)
    assert "300 image(s) already in the index, first: 00000.jpg" in res.output
    save_features(str(t / "wide.pkl"), ["x.jpg"], np.ones((1, 5), np.float32))
    assert "5-d features, the index holds 24-d" in run("index", "add", "--index", t / "g.index", "--features",
                                                       t / "wide.pkl", code=1).output
    (t / "junk.index").write_bytes(b"not a zip")
    with pytest.raises(IndexFileError, match="junk.index: not a gallery index"):
        load_gallery_index(str(t / "junk.index"))
    np.savez(t / "other.npz", names=np.array(["a"]))
    with pytest.raises(IndexFileError, match="format 'missing'"):
        load_gallery_index(str(t / "other.npz"))


def test_an_approximate_search_short_of_top_k_hits_is_an_error_not_a_wrong_row():
    from ensembles.search import SearchError, search

    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((400, 16)).astype(np.float32)
    query = rng.standard_normal((5, 16)).astype(np.float32)
    with pytest.raises(SearchError, match="fewer than 100 gallery hits.*nprobe"):
        search(query, gallery, topk=100, knn="faiss-ivf:nlist=10,nprobe=1")
    idx, _ = search(query, gallery, topk=10, knn="faiss-ivf:nlist=10,nprobe=1")
    assert (idx >= 0).all()
