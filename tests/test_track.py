"""Track steps: averaging, group distance and result expansion on hand-made tracks."""
import numpy as np
import pytest

from post_processing.track import track_average, track_expand, track_group_distance


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


RNG = np.random.default_rng(0)
GF = unit(RNG.normal(size=(9, 6)))
# Tracks 7 and 2 (ids need not be contiguous or sorted); rows 0, 4 and 8 are in no track.
TRACKS = np.array([-1, 7, 2, 7, -1, 2, 7, 2, -1])


def test_mean_gives_every_member_the_normalised_track_mean():
    out = track_average(GF, TRACKS)
    assert out.dtype == np.float32
    for t in (7, 2):
        members = np.flatnonzero(TRACKS == t)
        for m in members:
            np.testing.assert_allclose(out[m], unit(GF[members].mean(0)), atol=1e-6)
    for solo in (0, 4, 8):
        np.testing.assert_allclose(out[solo], GF[solo], atol=1e-6)


def test_untracked_rows_are_only_normalised():
    raw = GF * 5.0
    out = track_average(raw, np.full(len(raw), -1))
    np.testing.assert_allclose(out, GF, atol=1e-6)


def test_inverse_distance_weighting_shares_one_vector_and_downweights_the_outlier():
    inliers = unit(np.array([1.0, 0.0, 0.0]) + 0.05 * RNG.normal(size=(4, 3)))
    outlier = unit(np.array([[0.0, 1.0, 0.0]]))
    g = np.vstack([inliers, outlier])
    ids = np.zeros(5, dtype=int)
    out = track_average(g, ids, weighting="inverse_distance")
    mean = g.mean(0)
    w = 1.0 / (np.linalg.norm(g - mean, axis=1) + 0.01)
    expected = unit((w[:, None] * g).sum(0) / w.sum())
    for row in out:
        np.testing.assert_allclose(row, expected, atol=1e-6)
    plain = track_average(g, ids)[0]
    inlier_dir = unit(inliers.mean(0))
    assert out[0] @ inlier_dir > plain @ inlier_dir + 1e-3


def test_pairwise_weighting_matches_voc_reid_formula():
    members = np.flatnonzero(TRACKS == 7)
    out = track_average(GF, TRACKS, weighting="pairwise")
    f = GF[members]
    sq = ((f[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    expected = unit((1.0 / (sq + 0.01)) @ f)
    np.testing.assert_allclose(out[members], expected, atol=1e-5)
    assert not np.allclose(out[members], GF[members], atol=1e-4)
    np.testing.assert_allclose(out[0], GF[0], atol=1e-6)


def test_track_group_distance_gives_members_their_group_minimum():
    d = RNG.random((3, 9)).astype(np.float32)
    out = track_group_distance(d, TRACKS)
    for t in (7, 2):
        members = TRACKS == t
        np.testing.assert_allclose(out[:, members], np.repeat(d[:, members].min(1, keepdims=True), members.sum(), 1))
    np.testing.assert_array_equal(out[:, TRACKS < 0], d[:, TRACKS < 0])


def test_track_expand_appends_whole_tracks_in_ranked_order():
    # Query row: best is image 5 (track 2 = {2, 5, 7}), then 0 (no track), then 6 (track 7 = {1, 3, 6}) ...
    ranking = np.array([[5, 0, 6, 7, 3, 2, 8, 1, 4]])
    out = track_expand(ranking, TRACKS, topk=8)
    # Track 2 members in this query's rank order: 5, 7, 2; then 0; then track 7: 6, 3, 1; then 8.
    np.testing.assert_array_equal(out, [[5, 7, 2, 0, 6, 3, 1, 8]])
    assert out.dtype == np.int64


def test_track_expand_adds_members_missing_from_a_short_ranking():
    out = track_expand(np.array([[1, 4, 0]]), TRACKS, topk=5)
    np.testing.assert_array_equal(out, [[1, 3, 6, 4, 0]])


def test_track_expand_refuses_rows_that_cannot_reach_topk():
    with pytest.raises(ValueError, match="row 0: only 2 distinct"):
        track_expand(np.array([[0, 4, 0]]), TRACKS, topk=3)


@pytest.mark.parametrize("call, message", [
    (lambda: track_average(GF, TRACKS[:-1]), "one entry per gallery image"),
    (lambda: track_average(GF, TRACKS, weighting="median"), "unknown weighting"),
    (lambda: track_average(GF, TRACKS - 2), ">= -1"),
    (lambda: track_group_distance(np.zeros((2, 5)), TRACKS), "distmat column"),
    (lambda: track_expand(np.array([[0, 9]]), TRACKS, topk=1), "outside"),
    (lambda: track_average(GF, TRACKS.astype(float)), "integers"),
])
def test_bad_inputs_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()
