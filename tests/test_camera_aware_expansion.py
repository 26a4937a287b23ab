"""Camera-aware query expansion and DBA: only cross-camera neighbours, against a hand computation."""
import numpy as np
import pytest

from ensembles.pipeline import Labels, Pipeline, State, Step, run_pipeline
from ensembles.fusion import make_blocks
from post_processing.query_expansion import alpha_query_expansion, average_query_expansion, database_augmentation


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def angle(deg):
    return np.array([np.cos(np.radians(deg)), np.sin(np.radians(deg)), 0.0])


# One query (camera 0) along x; gallery at 5° (camera 0), 20° (camera 1), 40° (camera 0), 50° (camera 2).
Q = np.array([[1.0, 0.0, 0.0]])
G = np.array([angle(5), angle(20), angle(40), angle(50)]) * 2.0
QC, GC = np.array([0]), np.array([0, 1, 0, 2])


def test_aqe_takes_the_nearest_cross_camera_neighbours():
    out = average_query_expansion(Q, G, k=2, q_cams=QC, g_cams=GC)
    np.testing.assert_allclose(out[0], unit(Q[0] + unit(G[1]) + unit(G[3])), atol=1e-6)  # 20° and 50°
    plain = average_query_expansion(Q, G, k=2)
    np.testing.assert_allclose(plain[0], unit(Q[0] + unit(G[0]) + unit(G[1])), atol=1e-6)  # 5° and 20°


def test_alpha_qe_weights_and_fewer_cross_camera_neighbours_than_k():
    out = alpha_query_expansion(Q, G, k=3, alpha=2.0, q_cams=QC, g_cams=GC)
    c20, c50 = np.cos(np.radians([20, 50]))
    # Only two gallery vectors are from another camera: the third neighbour adds nothing.
    np.testing.assert_allclose(out[0], unit(Q[0] + c20 ** 2 * unit(G[1]) + c50 ** 2 * unit(G[3])), atol=1e-6)


def test_dba_expands_each_gallery_vector_with_other_cameras_only():
    out = database_augmentation(G, k=1, g_cams=GC)
    g = unit(G)
    # nearest other-camera vector of each: 5°->20°, 20°->5°, 40°->50°, 50°->40°
    for i, j in enumerate([1, 0, 3, 2]):
        np.testing.assert_allclose(out[i], unit(g[i] + g[j]), atol=1e-6)


def test_unknown_cameras_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        average_query_expansion(Q, G, k=1, q_cams=np.array([-1]), g_cams=GC)


def _state():
    labels = Labels(q_pids=np.array([0]), g_pids=np.array([0, 1, 0, 2]), q_camids=QC, g_camids=GC,
                    g_tracks=np.full(4, -1), has_gt=True)
    feats = {"query": {"m": Q.astype(np.float32)}, "gallery": {"m": G.astype(np.float32)}}
    return State(make_blocks(["m"], feats), labels)


@pytest.mark.parametrize("steps, aware", [([Step.make("qe", k=2)], False),
                                          ([Step.make("qe", k=2), Step.make("camera_penalty", penalty=0.3)], True),
                                          ([Step.make("qe", k=2, camera_aware=True)], True),
                                          ([Step.make("qe", k=2, camera_aware=False),
                                            Step.make("camera_penalty", penalty=0.3)], False)])
def test_qe_step_is_camera_aware_with_a_camera_penalty_or_when_asked(steps, aware):
    state = run_pipeline(Pipeline(["m"], steps=steps), _state())
    expected = average_query_expansion(Q, G, k=2, **({"q_cams": QC, "g_cams": GC} if aware else {}))
    np.testing.assert_allclose(state.blocks[0].query, expected, atol=1e-6)
