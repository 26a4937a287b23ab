"""Camera-aware top-K (feature-level) re-ranking: with a camera penalty it builds k-reciprocal
neighbourhoods across cameras exactly as the dense path does on the penalised matrices, both as a
library call and as the ``rerank`` step after ``camera_penalty`` when the top-K path is forced."""
import numpy as np
import pytest

from ensembles.fusion import FeatureBlock
from ensembles.pipeline import Labels, Pipeline, State, run_pipeline
from post_processing.camera import same_camera_penalty
from post_processing.distance import pairwise_distance
from post_processing.rerank import RerankError, re_ranking, re_ranking_features


def lattice(q=40, g=300, d=12, seed=0):
    """Small-integer features: every distance is exact, so the two paths can agree bit for bit."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(q + g, d)).astype(np.float32)
    return x[:q], x[q:], rng.integers(-1, 5, q), rng.integers(-1, 5, g)


def dense_penalised(Q, G, qc, gc, penalty, metric="euclidean"):
    def own(d, c):
        out = same_camera_penalty(d, c, c, penalty)
        np.fill_diagonal(out, np.diagonal(d))
        return out
    return (same_camera_penalty(pairwise_distance(Q, G, metric), qc, gc, penalty),
            own(pairwise_distance(Q, Q, metric), qc), own(pairwise_distance(G, G, metric), gc))


@pytest.mark.parametrize("block_size", [4096, 37])
@pytest.mark.parametrize("params", [(20, 6, 0.3), (5, 1, 0.5)])
def test_camera_aware_topk_equals_dense_on_penalised_matrices(block_size, params):
    Q, G, qc, gc = lattice()
    dense = re_ranking(*dense_penalised(Q, G, qc, gc, 0.7), *params)
    order = np.argsort(dense, axis=1, kind="stable")[:, :100]
    idx, dist = re_ranking_features(Q, G, *params, block_size=block_size, query_cams=qc, gallery_cams=gc,
                                    camera_penalty=0.7)
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_array_equal(dist, np.take_along_axis(dense, order, axis=1))
    plain, _ = re_ranking_features(Q, G, *params, block_size=block_size)
    assert (plain != idx).any()  # the penalty changes the neighbourhoods


def test_zero_penalty_is_the_plain_path_and_bad_camera_ids_are_refused():
    Q, G, qc, gc = lattice(seed=1)
    for a, b in zip(re_ranking_features(Q, G, query_cams=qc, gallery_cams=gc, camera_penalty=0.0),
                    re_ranking_features(Q, G)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RerankError, match="needs query_cams and gallery_cams"):
        re_ranking_features(Q, G, camera_penalty=1.0)
    with pytest.raises(RerankError, match="integer vectors of length 40 / 300"):
        re_ranking_features(Q, G, query_cams=qc[:5], gallery_cams=gc, camera_penalty=1.0)
    with pytest.raises(RerankError, match="camera_penalty must be a finite number >= 0"):
        re_ranking_features(Q, G, query_cams=qc, gallery_cams=gc, camera_penalty=-1.0)


@pytest.mark.parametrize("aware", [True, False])
def test_rerank_step_topk_path_agrees_with_dense_path_after_camera_penalty(aware):
    Q, G, qc, gc = lattice(q=30, g=200, seed=2)
    labels = Labels(np.arange(30) % 7, np.arange(200) % 7, qc, gc, np.full(200, -1))
    pipe = Pipeline.from_dict({"models": ["a"], "steps": [
        {"name": "camera_penalty", "penalty": 0.5}, {"name": "rerank", "k1": 6, "k2": 2, "camera_aware": aware}]})

    def ranking(dense_max):
        state = State([FeatureBlock("a", 1.0, Q, G)], labels, topk=50, dense_rerank_max=dense_max)
        run_pipeline(pipe, state)
        return state.rank(50), state.notes

    dense, dense_notes = ranking(10_000)
    topk, topk_notes = ranking(0)
    assert not dense_notes and "top-50 re-ranking from features" in topk_notes[0]
    assert ("camera-aware" in topk_notes[0]) == aware
    if aware:  # camera_aware false re-ranks differently by design: the top-K path adds the penalty afterwards
        np.testing.assert_array_equal(topk, dense)


def test_fuse_knn_option_reaches_the_topk_rerank_and_bad_specs_exit_2(tmp_path, ensemble_fakes):
    from click.testing import CliRunner

    from ensembles.cli import main

    tree = ensemble_fakes.build_tree(str(tmp_path / "data"))
    ensemble_fakes.write_features(str(tmp_path / "feats"), tree, {"a": 0.6})
    base = ["fuse", "--models", "a", "--features-dir", str(tmp_path / "feats"), "--data-root", str(tmp_path / "data"),
            "--camera-penalty", "0.5", "--rerank", "--k1", "6", "--k2", "2", "--dense-rerank-max", "0", "--topk", "50"]

    def track2(*extra):
        out = tmp_path / f"t{len(extra)}.txt"
        res = CliRunner().invoke(main, base + ["--out", str(out)] + list(extra))
        assert res.exit_code == 0, res.output
        return out.read_text(), res.output

    exact, exact_log = track2()
    knn, knn_log = track2("--knn", "exact")
    assert knn == exact and "neighbours: --knn exact, camera-aware" in knn_log
    res = CliRunner().invoke(main, base + ["--out", str(tmp_path / "x.txt"), "--knn", "faiss-ivf:nprobes=3"])
    assert res.exit_code == 2 and "has no parameter nprobes" in res.output
