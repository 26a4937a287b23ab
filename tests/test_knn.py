"""Neighbour backends (post_processing.knn): the flat ones return the exact top-K, the approximate
ones reach their stated recall, indexes survive a state round trip and keep earlier results when
vectors are added; top-K re-ranking through a backend agrees with the exact numba path. The faiss
tests are skipped where faiss is not installed (the ``test`` extra installs it)."""
import numpy as np
import pytest

from post_processing.knn import (KNN_BACKENDS, FaissMissingError, KnnError, KnnUsageError, build_index, farthest_sq,
                                 index_from_state, parse_knn)
from post_processing.rerank import re_ranking_features

try:
    import faiss  # noqa: F401
    HAVE_FAISS = True
except ImportError:
    HAVE_FAISS = False

needs_faiss = pytest.mark.skipif(not HAVE_FAISS, reason="faiss is not installed (pip install faiss-cpu)")
FLAT = ["exact", pytest.param("faiss", marks=needs_faiss)]
# Approximate backends and the recall@20 they are stated to reach on clustered data (defaults).
APPROX = [pytest.param("faiss-ivf", 0.95, marks=needs_faiss),
          pytest.param("faiss-hnsw", 0.95, marks=needs_faiss)]


def clustered(n, d=32, ids=40, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, d)).astype(np.float32)
    x = centres[rng.integers(0, ids, n)] + 0.6 * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_topk(q, x, k, metric="euclidean"):
    from post_processing.distance import pairwise_distance, topk_smallest
    d = pairwise_distance(q, x, metric)
    idx = topk_smallest(d, k)
    return idx, np.take_along_axis(d, idx, axis=1)


def recall(got, want):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(got, want)])


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("spec", FLAT)
def test_flat_backends_return_the_exact_topk(spec, metric):
    x, q = clustered(3000), clustered(200, seed=1) * 1.5
    idx, dist = build_index(spec, x, metric).search(q, 20)
    ref_idx, ref_dist = exact_topk(q, x, 20, metric)
    assert idx.dtype == np.int64 and dist.dtype == np.float32 and idx.shape == (200, 20)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec,stated", APPROX)
def test_approximate_backends_reach_their_stated_recall(spec, stated):
    x, q = clustered(4000), clustered(300, seed=2)
    idx, _ = build_index(spec, x).search(q, 20)
    assert recall(idx, exact_topk(q, x, 20)[0]) >= stated


@pytest.mark.parametrize("spec", ["exact"] + [pytest.param(s, marks=needs_faiss)
                                              for s in ("faiss", "faiss-ivf:nlist=16", "faiss-hnsw")])
def test_state_round_trip_and_add_keeps_earlier_results(spec):
    x = clustered(2000)
    index = build_index(spec, x[:1500])
    before = index.search(x[:50], 10)
    again = index_from_state(dict(index.state()))
    for a, b in zip(again.search(x[:50], 10), before):
        np.testing.assert_array_equal(a, b)
    again.add(x[1500:])
    assert again.ntotal == 2000
    idx, _ = again.search(x[1500:1550], 1)
    np.testing.assert_array_equal(idx[:, 0], np.arange(1500, 1550))  # the added vectors are found
    old_idx, _ = again.search(x[:50], 1)
    np.testing.assert_array_equal(old_idx[:, 0], before[0][:, 0])  # earlier ids are unchanged


@pytest.mark.parametrize("spec", ["exact", pytest.param("faiss", marks=needs_faiss)])
def test_farthest_distance_is_the_largest_one(spec):
    x, q = clustered(1500), clustered(100, seed=3)
    from post_processing.distance import pairwise_distance
    np.testing.assert_allclose(farthest_sq(spec, x, q), pairwise_distance(q, x, "sqeuclidean").max(axis=1), rtol=1e-5)


@needs_faiss
def test_topk_rerank_with_faiss_flat_equals_the_exact_path_and_ivf_stays_close():
    q, g = clustered(120, seed=4), clustered(1500, seed=5)
    cams_q, cams_g = np.arange(120) % 5, np.arange(1500) % 5
    for camera in ({}, dict(query_cams=cams_q, gallery_cams=cams_g, camera_penalty=0.5)):
        ref_idx, ref_dist = re_ranking_features(q, g, topk=30, **camera)
        idx, dist = re_ranking_features(q, g, topk=30, knn="faiss", **camera)
        assert (idx == ref_idx).all(axis=1).mean() >= 0.95
        np.testing.assert_allclose(dist, ref_dist, atol=1e-5)
        ivf, _ = re_ranking_features(q, g, topk=30, knn="faiss-ivf:nprobe=8", **camera)
        assert recall(ivf, ref_idx) >= 0.95


def test_bad_specs_are_usage_errors_naming_the_problem():
    assert parse_knn(None).name == "exact" and str(parse_knn("exact")) == "exact"
    with pytest.raises(KnnUsageError, match="unknown knn backend 'fiass'"):
        parse_knn("fiass")
    if HAVE_FAISS:
        assert str(parse_knn("faiss-ivf:nlist=8, nprobe=2")) == "faiss-ivf:nlist=8,nprobe=2"
        with pytest.raises(KnnUsageError, match="has no parameter efsearch"):
            parse_knn("faiss-hnsw:efsearch=3")
        with pytest.raises(KnnUsageError, match="nprobe='x' is not int"):
            build_index("faiss-ivf:nprobe=x", clustered(100))
        with pytest.raises(KnnError, match="faiss cannot index 20 vectors of 32-d: .*training points"):
            build_index("faiss-ivf:nlist=64", clustered(20))
    with pytest.raises(KnnUsageError, match="is not KEY=VALUE"):
        parse_knn("exact:nlist")


def test_faiss_missing_says_how_to_install(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(FaissMissingError, match="pip install faiss-cpu"):
        build_index("faiss-ivf", clustered(100))
    assert "faiss-hnsw" in KNN_BACKENDS.names()
