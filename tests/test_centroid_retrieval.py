"""The ``centroid`` step against a hand computation on a small gallery with tracks."""
import numpy as np
import pytest

from ensembles.fusion import FeatureBlock
from ensembles.pipeline import Labels, Pipeline, PipelineError, State, run_pipeline
from post_processing.centroid import centroid_distances, group_ids


def unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


# Gallery: track 0 = images 0, 1 (camera 0); track 1 = images 2, 3 (cameras 1 and 2); image 4 in no track.
G = np.array([unit([1, 0, 0]), unit([1, 1, 0]), unit([0, 1, 0]), unit([0, 1, 1]), unit([0, 0, 1])], np.float32)
Q = np.array([unit([1, 0.2, 0]), unit([0, 1, 0.1])], np.float32)
TRACKS = np.array([0, 0, 1, 1, -1])
G_CAMS = np.array([0, 0, 1, 2, 1])
Q_CAMS = np.array([1, 2])
G_PIDS = np.array([7, 7, 8, 8, 7])


def by_hand(members_of):
    """(Q, G) distances: each gallery image takes |q - unit(mean of members_of(q, image))|."""
    out = np.zeros((len(Q), len(G)))
    for i, q in enumerate(Q):
        for j in range(len(G)):
            out[i, j] = np.linalg.norm(q - unit(G[members_of(i, j)].mean(0)))
    return out


def test_track_centroids_by_hand():
    def members(i, j):
        return [k for k in range(5) if TRACKS[k] == TRACKS[j]] if TRACKS[j] >= 0 else [j]

    got = centroid_distances(Q, G, group_ids(TRACKS))
    np.testing.assert_allclose(got, by_hand(members), atol=1e-6)
    assert got[0, 0] == got[0, 1] and got[1, 2] == got[1, 3]  # every image takes its centroid's distance


def test_query_camera_exclusion_and_per_camera_by_hand():
    def members(i, j):
        if TRACKS[j] < 0:
            return [j]
        same = [k for k in range(5) if TRACKS[k] == TRACKS[j]]
        outside = [k for k in same if G_CAMS[k] != Q_CAMS[i]]
        return outside or [j]  # a group seen only by the query's camera keeps per-image distances

    got = centroid_distances(Q, G, group_ids(TRACKS), q_camids=Q_CAMS, g_camids=G_CAMS, exclude_query_camera=True)
    np.testing.assert_allclose(got, by_hand(members), atol=1e-6)
    # query 1 (camera 2): track 1 is image 2 alone (image 3 is in camera 2)
    assert got[1, 3] == pytest.approx(np.linalg.norm(Q[1] - G[2]), abs=1e-6)
    per_cam = group_ids(G_PIDS, G_CAMS)
    assert len(set(per_cam)) == 4 and per_cam[0] == per_cam[1]  # (7, c0) (7, c0) (8, c1) (8, c2) (7, c1)


def _state(weight=1.0, has_gt=True):
    labels = Labels(np.array([7, 8]), G_PIDS, Q_CAMS, G_CAMS, TRACKS, has_gt=has_gt)
    return State([FeatureBlock("m", weight, Q.copy(), G.copy())], labels)


def test_centroid_step_runs_in_a_pipeline_with_tracks_and_ids():
    state = run_pipeline(Pipeline.from_dict({"steps": [{"name": "centroid", "group": "track"}]}), _state())
    np.testing.assert_allclose(state.dist, centroid_distances(Q, G, group_ids(TRACKS)), atol=1e-6)
    state = run_pipeline(Pipeline.from_dict({"steps": ["centroid"]}), _state())  # auto: labelled gallery -> ids
    np.testing.assert_allclose(state.dist, centroid_distances(Q, G, group_ids(G_PIDS)), atol=1e-6)
    assert "2 id centroids" in state.notes[-1]
    unlabelled = run_pipeline(Pipeline.from_dict({"steps": ["centroid"]}), _state(has_gt=False))
    np.testing.assert_allclose(unlabelled.dist, centroid_distances(Q, G, group_ids(TRACKS)), atol=1e-6)


def test_centroid_step_keeps_earlier_distance_terms_and_needs_groups():
    pipe = Pipeline.from_dict({"steps": [{"name": "camera_penalty", "penalty": 1.0},
                                         {"name": "centroid", "group": "track"}]})
    state = run_pipeline(pipe, _state())
    want = centroid_distances(Q, G, group_ids(TRACKS)) + (Q_CAMS[:, None] == G_CAMS[None, :])
    np.testing.assert_allclose(state.dist, want, atol=1e-6)
    bare = State([FeatureBlock("m", 1.0, Q.copy(), G.copy())],
                 Labels(np.array([-1, -1]), -np.ones(5, int), Q_CAMS, G_CAMS, -np.ones(5, int)))
    with pytest.raises(PipelineError, match="neither"):
        run_pipeline(Pipeline.from_dict({"steps": ["centroid"]}), bare)
