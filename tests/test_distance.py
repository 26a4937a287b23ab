import numpy as np
import pytest
from scipy.spatial.distance import cdist

from post_processing.distance import pairwise_distance, topk_smallest


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_pairwise_matches_scipy_across_blocks(metric):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(23, 12)), rng.normal(size=(31, 12))
    d = pairwise_distance(a, b, metric, block_rows=4)
    assert d.dtype == np.float32 and d.shape == (23, 31)
    np.testing.assert_allclose(d, cdist(a, b, metric), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d, pairwise_distance(a, b, metric, block_rows=1000), rtol=1e-5, atol=1e-5)


def test_self_distance_is_clamped_at_zero():
    x = np.random.default_rng(1).normal(size=(50, 64)).astype(np.float32) * 100
    for metric in ("euclidean", "sqeuclidean", "cosine"):
        d = pairwise_distance(x, x, metric)
        assert (d >= 0).all() and np.isfinite(d).all()
    d = pairwise_distance(x, x, "euclidean")
    assert np.diag(d).max() < 1e-3 * np.median(d)  # float32 GEMM rounding only


def test_pairwise_errors_name_the_problem():
    a = np.ones((3, 4))
    with pytest.raises(ValueError, match="dimension mismatch"):
        pairwise_distance(a, np.ones((2, 5)))
    with pytest.raises(ValueError, match="unknown metric"):
        pairwise_distance(a, a, "manhattan")
    b = np.ones((3, 4))
    b[2] = 0
    with pytest.raises(ValueError, match="b row 2 has zero norm"):
        pairwise_distance(a, b, "cosine")


def test_topk_is_stable_argsort_prefix_with_ties():
    rng = np.random.default_rng(2)
    d = rng.integers(0, 4, size=(17, 40)).astype(np.float32)  # many ties
    full = np.argsort(d, axis=1, kind="stable")
    for k in (1, 5, 13, 40):
        np.testing.assert_array_equal(topk_smallest(d, k, block_rows=3), full[:, :k])
    np.testing.assert_array_equal(topk_smallest(d, 100), full)  # k clipped to the row length
    np.testing.assert_array_equal(topk_smallest(d[0], 3), full[0, :3])


def test_topk_refuses_nan():
    d = np.zeros((4, 5), np.float32)
    d[2, 1] = np.nan
    with pytest.raises(ValueError, match="row 2 contains NaN"):
        topk_smallest(d, 2)
