"""Camera terms: same-camera penalty and camera/orientation model distance subtraction."""
import numpy as np
import pytest

from post_processing.camera import same_camera_penalty, subtract_distance, subtract_model_distance
from post_processing.distance import pairwise_distance

D = np.array([[0.1, 0.2, 0.3, 0.4],
              [0.5, 0.6, 0.7, 0.8]], dtype=np.float32)


def test_penalty_is_added_exactly_where_cameras_match():
    out = same_camera_penalty(D, [3, -1], [3, 4, -1, 3], penalty=0.5)
    expected = D.copy()
    expected[0, [0, 3]] += 0.5  # query camera 3 vs gallery cameras 3; unknown (-1) never penalised
    np.testing.assert_allclose(out, expected)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(D[0], np.float32([0.1, 0.2, 0.3, 0.4]))  # input untouched


def test_default_penalty_moves_same_camera_match_behind_cross_camera_ones():
    out = same_camera_penalty(D, [3, 5], [3, 4, 5, 6])
    assert np.argsort(out[0])[0] == 1 and np.argsort(out[0])[-1] == 0


def test_penalty_refuses_mismatched_camids():
    with pytest.raises(ValueError, match="camids must match"):
        same_camera_penalty(D, [1, 2], [1, 2, 3])


def test_subtract_distance_uses_weight():
    aux = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_allclose(subtract_distance(D, aux), D - 0.1 * aux, atol=1e-7)
    np.testing.assert_allclose(subtract_distance(D, aux, weight=0.5), D - 0.5 * aux, atol=1e-7)
    with pytest.raises(ValueError, match="does not match"):
        subtract_distance(D, aux[:, :3])


def test_model_distance_favours_pairs_the_camera_model_sees_as_different():
    q_cam = np.array([[1.0, 0.0], [0.0, 1.0]])
    g_cam = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 1.0]])  # normalised inside
    out = subtract_model_distance(D, q_cam, g_cam, weight=0.1)
    aux = pairwise_distance(q_cam, g_cam / np.linalg.norm(g_cam, axis=1, keepdims=True), "sqeuclidean")
    np.testing.assert_allclose(out, D - 0.1 * aux, atol=1e-6)
    # Same-looking camera: unchanged; orthogonal camera features (squared distance 2): lowered by 0.2.
    np.testing.assert_allclose(out[0], [0.1, 0.0, 0.3, 0.2], atol=1e-6)
