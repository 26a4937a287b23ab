from collections import defaultdict

import numpy as np
import pytest

from post_processing.errors import ReidUsageError
from post_processing.evaluation import (EvaluationError, aic_map, evaluate, evaluate_cuhk03, evaluate_numpy,
                                        evaluate_ranking, evaluate_vehicleid)
from post_processing.protocols import PROTOCOLS, evaluate_protocol
from post_processing.registry import UnknownNameError


def _case(seed, nq=25, ng=60, nids=7, ncams=3, levels=4):
    """Integer-valued distances (many ties); some query ids absent from the gallery and some
    queries whose only same-id gallery images share their camera (both must be skipped)."""
    rng = np.random.default_rng(seed)
    d = rng.integers(0, levels, (nq, ng)).astype(np.float32)
    q_pids = rng.integers(0, nids + 2, nq)  # ids nids, nids+1 never in the gallery
    g_pids = rng.integers(0, nids, ng)
    q_cams = rng.integers(0, ncams, nq)
    g_cams = rng.integers(0, ncams, ng)
    g_pids[g_pids == 0] = 1
    g_pids[:2], g_cams[:2] = 0, 0  # id 0 lives only on camera 0 ...
    q_pids[:2], q_cams[:2] = 0, (0, 1)  # ... so query 0 is all junk, query 1 is valid
    return d, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", range(8))
def test_evaluate_equals_numpy_reference_exactly(seed):
    args = _case(seed)
    got, ref = evaluate(*args, max_rank=20), evaluate_numpy(*args, max_rank=20)
    assert got["num_valid"] == ref["num_valid"] < len(args[0]) - 2
    assert got["mAP"] == ref["mAP"] and got["mINP"] == ref["mINP"]
    np.testing.assert_array_equal(got["cmc"], ref["cmc"])


def test_evaluate_hand_computed():
    # gallery: match (0.1), non-match (0.2), junk same cam (0.05), match (0.3), match tied with a non-match
    d = np.array([[0.1, 0.2, 0.05, 0.3, 0.4, 0.4]])
    g_pids = np.array([7, 8, 7, 7, 8, 7])
    g_cams = np.array([2, 1, 1, 2, 1, 3])
    r = evaluate(d, [7], g_pids, [1], g_cams, max_rank=5)
    # kept order: m(0) n(1) m(3) n(4) m(5) -> matches at ranks 0, 2, 4 (tie: lower index first)
    assert r["mAP"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert r["mINP"] == pytest.approx(3 / 5)
    np.testing.assert_array_equal(r["cmc"], [1, 1, 1, 1, 1])
    assert r["num_valid"] == 1
    # the reference agrees on the same hand case
    assert evaluate_numpy(d, [7], g_pids, [1], g_cams, 5)["mAP"] == r["mAP"]


def test_evaluate_edge_cases():
    d, qp, gp, qc, gc = _case(0, ng=12)
    assert len(evaluate(d, qp, gp, qc, gc)["cmc"]) == 12  # max_rank clipped to the gallery size
    strings = evaluate(d, qp.astype(str), gp.astype(str), qc, gc)
    assert strings["mAP"] == evaluate(d, qp, gp, qc, gc)["mAP"]
    with pytest.raises(ValueError, match="no query has a valid match"):
        evaluate(d, qp + 100, gp, qc, gc)
    bad = d.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="row 3 contains NaN"):
        evaluate(bad, qp, gp, qc, gc)
    with pytest.raises(ValueError, match="g_camids has 11 entries, expected 12"):
        evaluate(d, qp, gp, qc, gc[:-1])


@pytest.mark.parametrize("seed", range(4))
def test_ranking_full_gallery_equals_dense(seed):
    args = _case(seed)
    idx = np.argsort(args[0], axis=1, kind="stable")
    got, dense = evaluate_ranking(idx, *args[1:], max_rank=20), evaluate(*args, max_rank=20)
    assert got["mAP"] == dense["mAP"] and got["mINP"] == dense["mINP"] and got["num_valid"] == dense["num_valid"]
    np.testing.assert_array_equal(got["cmc"], dense["cmc"])


def test_ranking_truncated_uses_all_relevant_as_denominator():
    g_pids = np.array([1, 2, 1, 3, 1, 1])
    g_cams = np.array([1, 1, 1, 1, 0, 1])  # index 4 is junk for a camera-0 query
    idx = np.array([[4, 0, 3, 2]])  # junk, match, non-match, match; match 5 not retrieved
    r = evaluate_ranking(idx, [1], g_pids, [0], g_cams, max_rank=3)
    assert r["mAP"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert r["mINP"] == 0  # not every match is in the list
    np.testing.assert_array_equal(r["cmc"], [1, 1, 1])
    r = evaluate_ranking(idx, [1], g_pids, [0], g_cams, max_rank=3, num_relevant=[2])
    assert r["mAP"] == pytest.approx((1 / 1 + 2 / 3) / 2) and r["mINP"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="row 0 contains a gallery index twice"):
        evaluate_ranking([[0, 0]], [1], g_pids, [0], g_cams)
    with pytest.raises(ValueError, match=r"row 0 contains an index outside \[0, 6\)"):
        evaluate_ranking([[6]], [1], g_pids, [0], g_cams)


def _ap_at_k(ranked_pids, qp, n_rel, k):
    hits, total = 0, 0.0
    for r, p in enumerate(ranked_pids[:k]):
        if p == qp:
            hits += 1
            total += hits / (r + 1)
    return total / min(n_rel, k)


def test_aic_map_top_k_without_camera_filter():
    rng = np.random.default_rng(3)
    d = rng.random((6, 30))
    q_pids, g_pids = rng.integers(0, 4, 6), rng.integers(0, 4, 30)
    q_pids[5] = 99  # no match anywhere: skipped
    k = 5
    idx = np.argsort(d, axis=1, kind="stable")
    expect = np.mean([_ap_at_k(g_pids[idx[q]], q_pids[q], (g_pids == q_pids[q]).sum(), k) for q in range(5)])
    assert aic_map(d, q_pids, g_pids, topk=k) == pytest.approx(expect, abs=1e-12)
    assert aic_map(idx, q_pids, g_pids, topk=k) == pytest.approx(expect, abs=1e-12)
    # more than topk relevant images, all of the top-k correct -> 1
    assert aic_map(np.array([[0, 1, 2]]), [5], [5, 5, 5, 5, 5], topk=3) == 1.0


def _cuhk03_reference(distmat, q_pids, g_pids, q_cams, g_cams, max_rank, keys):
    """torchreid's eval_cuhk03 CMC loop, with its random pick replaced by "lowest key"."""
    indices = np.argsort(distmat, axis=1, kind="stable")
    all_cmc = []
    for q in range(len(q_pids)):
        order = indices[q]
        keep = ~((g_pids[order] == q_pids[q]) & (g_cams[order] == q_cams[q]))
        raw = (g_pids[order] == q_pids[q])[keep].astype(int)
        if not raw.any():
            continue
        by_pid = defaultdict(list)
        for pos, g in enumerate(order[keep]):
            by_pid[g_pids[g]].append((pos, g))
        cmc = np.zeros(max_rank)
        for rk in keys:
            mask = np.zeros(len(raw), bool)
            for members in by_pid.values():
                mask[min(members, key=lambda m: rk[m[1]])[0]] = True
            c = np.minimum(raw[mask].cumsum(), 1)[:max_rank]
            cmc += np.pad(c, (0, max_rank - len(c)), constant_values=1)
        all_cmc.append(cmc / len(keys))
    return np.mean(all_cmc, axis=0)


def test_cuhk03_single_shot_matches_reference():
    args = _case(5, nq=15, ng=40)
    r = evaluate_cuhk03(*args, max_rank=10, repeats=4, seed=9)
    keys = np.random.default_rng(9).random((4, 40))
    np.testing.assert_allclose(r["cmc"], _cuhk03_reference(*args, 10, keys), rtol=0, atol=1e-12)
    dense = evaluate(*args, max_rank=10)
    assert r["mAP"] == dense["mAP"] and r["num_valid"] == dense["num_valid"]
    assert not np.array_equal(r["cmc"], dense["cmc"])  # single-shot is easier than multi-shot


def test_vehicleid_protocol():
    rng = np.random.default_rng(4)
    pids = np.repeat(np.arange(12), rng.integers(1, 5, 12))
    feats = rng.normal(size=(len(pids), 16)) * 0.3 + rng.normal(size=(12, 16))[pids]
    r = evaluate_vehicleid(feats, pids, repeats=3, seed=1, max_rank=5)

    # reference: the documented split (lowest uniform key per id is gallery) + the numpy evaluator
    draws = np.random.default_rng(1)
    maps, cmcs = [], []
    for _ in range(3):
        keys = draws.random(len(pids))
        gallery = np.array(sorted(min(np.flatnonzero(pids == p), key=lambda i: keys[i]) for p in range(12)))
        query = np.array([i for i in range(len(pids)) if i not in set(gallery)])
        dist = np.sqrt(((feats[query, None] - feats[None, gallery]) ** 2).sum(-1))
        ref = evaluate_numpy(dist, pids[query], pids[gallery], np.zeros(len(query)), np.ones(12), 5)
        maps.append(ref["mAP"])
        cmcs.append(ref["cmc"])
    assert r["num_valid"] == len(pids) - 12
    assert r["mAP"] == pytest.approx(np.mean(maps), abs=1e-6)
    np.testing.assert_allclose(r["cmc"], np.mean(cmcs, axis=0), atol=1e-12)

    dist_all = np.sqrt(((feats[:, None] - feats[None]) ** 2).sum(-1))
    pre = evaluate_vehicleid(dist_all, pids, repeats=3, seed=1, max_rank=5, metric="precomputed")
    assert pre["mAP"] == pytest.approx(r["mAP"], abs=1e-6)


def _same_result(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def _vehicleid_case():
    rng = np.random.default_rng(4)
    pids = np.repeat(np.arange(8), rng.integers(2, 5, 8))
    feats = rng.normal(size=(len(pids), 8)) * 0.3 + rng.normal(size=(8, 8))[pids]
    dist = np.sqrt(((feats[:, None] - feats[None]) ** 2).sum(-1))
    return dist, pids, pids, np.zeros(len(pids)), np.zeros(len(pids))


@pytest.mark.parametrize("name,options,direct", [
    ("market", {"max_rank": 20}, lambda *a: evaluate(*a, max_rank=20)),
    ("cuhk03", {"repeats": 3, "seed": 2}, lambda *a: evaluate_cuhk03(*a, repeats=3, seed=2)),
    ("aic", {"topk": 5}, lambda *a: {"mAP": aic_map(*a[:3], topk=5), "topk": 5, "full_mAP": evaluate(*a)["mAP"],
                                      **{k: evaluate(*a)[k] for k in ("mINP", "cmc", "num_valid")}}),
])
def test_builtin_protocols_by_name_equal_the_direct_calls(name, options, direct):
    args = _case(6)
    _same_result(evaluate_protocol(name, *args, **options), direct(*args))


def test_vehicleid_protocol_by_name_takes_the_whole_test_set_as_query_and_gallery():
    dist, pids, _, cams, _ = _vehicleid_case()
    _same_result(evaluate_protocol("vehicleid", dist, pids, pids, cams, cams, repeats=3, seed=1),
                 evaluate_vehicleid(dist, pids, repeats=3, seed=1, metric="precomputed"))


@pytest.fixture
def nearest_protocol():
    """A protocol registered from this test file alone, removed again afterwards."""
    def nearest_is_match(dist, q_pids, g_pids, q_camids, g_camids, scale=1.0):
        nearest = np.asarray(g_pids)[np.argmin(dist, axis=1)]
        return {"mAP": scale * float(np.mean(nearest == np.asarray(q_pids)))}

    PROTOCOLS.register("test_nearest_is_match", nearest_is_match)
    yield "test_nearest_is_match"
    PROTOCOLS.unregister("test_nearest_is_match")


def test_a_protocol_registered_in_a_test_file_is_evaluated_by_name(nearest_protocol):
    assert nearest_protocol in PROTOCOLS.names()
    dist = np.array([[0.1, 0.5, 0.3], [0.9, 0.2, 0.4]])
    assert evaluate_protocol(nearest_protocol, dist, [1, 3], [1, 2, 3], [0, 0], [1, 1, 1], scale=2.0) == {"mAP": 1.0}


@pytest.mark.parametrize("name,options,error,message", [
    ("markte", {}, UnknownNameError, "unknown evaluation protocol 'markte'; did you mean 'market'"),
    ("market", {"topk": 5}, ReidUsageError, "protocol 'market'.*'topk'.*options are max_rank"),
    ("aic", {"repeats": 2}, ReidUsageError, "protocol 'aic'.*'repeats'.*options are topk"),
    ("vehicleid", {}, EvaluationError, "whole test set as both query and gallery"),
])
def test_protocol_misuse_is_refused_with_the_name_and_the_options(name, options, error, message):
    with pytest.raises(error, match=message):
        evaluate_protocol(name, *_case(6), **options)
