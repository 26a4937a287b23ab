"""Query expansion / DBA: outputs equal the documented weighted sums on hand-checkable data."""
import numpy as np
import pytest

from post_processing.query_expansion import alpha_query_expansion, average_query_expansion, database_augmentation


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def angle(deg, axis):
    v = np.zeros(3)
    v[0], v[axis] = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return v


# Query along x; gallery at 10°, 30°, 60° from it and one vector pointing away.
Q = np.array([[2.0, 0.0, 0.0]])
G = np.array([angle(30, 2), angle(10, 1), -angle(0, 1), angle(60, 1)]) * 3.0


def test_aqe_adds_top_k_neighbours_and_normalises():
    out = average_query_expansion(Q, G, k=2)
    expected = unit(unit(Q[0]) + unit(G[1]) + unit(G[0]))  # 10° and 30° are the two nearest
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], expected, atol=1e-6)
    assert not np.allclose(out[0], unit(Q[0]), atol=1e-3)


def test_aqe_with_k_zero_only_normalises():
    np.testing.assert_allclose(average_query_expansion(Q, G, k=0)[0], unit(Q[0]), atol=1e-7)


def test_alpha_qe_weights_neighbours_by_similarity_power():
    out = alpha_query_expansion(Q, G, k=3, alpha=3.0)
    c10, c30, c60 = np.cos(np.radians([10, 30, 60]))
    expected = unit(unit(Q[0]) + c10**3 * unit(G[1]) + c30**3 * unit(G[0]) + c60**3 * unit(G[3]))
    np.testing.assert_allclose(out[0], expected, atol=1e-6)


def test_alpha_zero_is_average_qe_and_negative_similarity_gets_no_weight():
    np.testing.assert_allclose(alpha_query_expansion(Q, G, k=2, alpha=0.0), average_query_expansion(Q, G, k=2),
                               atol=1e-6)
    # The fifth neighbour, -Q, points away (cos = -1), so its weight max(cos, 0)^α is 0.
    with_all = alpha_query_expansion(Q, np.vstack([G, -Q]), k=5, alpha=3.0)
    np.testing.assert_allclose(with_all, alpha_query_expansion(Q, G, k=4, alpha=3.0), atol=1e-6)


def test_dba_averages_each_gallery_vector_with_its_k_nearest_others():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(12, 5))
    k = 3
    out = database_augmentation(g, k=k, block_rows=5)
    gu = unit(g)
    sim = gu @ gu.T
    for i in range(len(g)):
        others = [j for j in np.argsort(-sim[i], kind="stable") if j != i][:k]
        np.testing.assert_allclose(out[i], unit(gu[i] + gu[others].sum(0)), atol=1e-5)


def test_dba_alpha_weights_and_block_size_do_not_change_result():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(9, 4))
    a = database_augmentation(g, k=2, alpha=3.0, block_rows=2)
    b = database_augmentation(g, k=2, alpha=3.0)
    np.testing.assert_allclose(a, b, atol=1e-6)
    gu = unit(g)
    sim = gu @ gu.T
    nn = [j for j in np.argsort(-sim[0], kind="stable") if j != 0][:2]
    expected = unit(gu[0] + sum(max(sim[0, j], 0) ** 3 * gu[j] for j in nn))
    np.testing.assert_allclose(a[0], expected, atol=1e-5)
    assert not np.allclose(a, database_augmentation(g, k=2), atol=1e-4)


def test_qe_pulls_query_towards_its_identity_cluster():
    rng = np.random.default_rng(2)
    centre = unit(rng.normal(size=16))
    cluster = unit(centre + 0.3 * rng.normal(size=(6, 16)))
    distractors = unit(rng.normal(size=(30, 16)))
    q = unit(centre + 0.6 * rng.normal(size=(1, 16)))
    before = float(q[0] @ centre)
    after = float(average_query_expansion(q, np.vstack([cluster, distractors]), k=6)[0] @ centre)
    assert after > before + 0.05


@pytest.mark.parametrize("call", [
    lambda: average_query_expansion(Q, G, k=-1),
    lambda: alpha_query_expansion(Q, G, alpha=-1.0),
    lambda: database_augmentation(G[0], k=2),
    lambda: average_query_expansion(Q, np.zeros((3, 3))),
    lambda: database_augmentation(G, block_rows=0),
])
def test_bad_arguments_are_refused(call):
    with pytest.raises(ValueError):
        call()
