import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from post_processing.features import (FeatureFileError, FeatureSet, align, find_feature_file, l2_normalize,
                                      load_embeddings, load_features, restricted_load, save_features)

NAMES = [f"{i:06d}.jpg" for i in range(1, 6)]


def _feats(n=5, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".pkl", ".npz"])
def test_save_load_roundtrip(tmp_path, suffix):
    path = tmp_path / f"query_m{suffix}"
    save_features(path, NAMES, _feats())
    fs = load_features(path)
    assert fs.names == NAMES and fs.path == str(path)
    assert fs.feats.dtype == np.float32
    np.testing.assert_array_equal(fs.feats, _feats())
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_pickle_is_the_aic_dict_format(tmp_path):
    path = tmp_path / "gallery_m.pkl"
    save_features(path, NAMES, _feats())
    with open(path, "rb") as f:
        assert f.read(2) == b"\x80\x04"  # protocol 4
    with open(path, "rb") as f:
        obj = pickle.load(f)
    assert type(obj) is dict and list(obj) == NAMES
    assert all(v.dtype == np.float32 and v.shape == (8,) for v in obj.values())


def test_loose_pickle_values_are_flattened_to_float32(tmp_path):
    path = tmp_path / "q.pkl"
    with open(path, "wb") as f:
        pickle.dump(OrderedDict([("a.jpg", [1.0, 2.0, 3.0]), ("b.jpg", np.array([[4.0, 5.0, 6.0]])),
                                 ("c.jpg", np.array([7, 8, 9], np.float64))]), f, protocol=2)
    fs = load_features(path)
    assert fs.names == ["a.jpg", "b.jpg", "c.jpg"] and fs.feats.dtype == np.float32
    np.testing.assert_array_equal(fs.feats, np.arange(1, 10).reshape(3, 3))


def test_python2_pickle_loads(tmp_path, py2_feature_pickle):
    path = tmp_path / "query_old.pkl"
    path.write_bytes(py2_feature_pickle([(b"000001.jpg", [1.5, -2.0, 3.25]), (b"000002.jpg", [0.5, 0.0, 1.0])]))
    fs = load_features(path)
    assert fs.names == ["000001.jpg", "000002.jpg"]
    np.testing.assert_array_equal(fs.feats, [[1.5, -2.0, 3.25], [0.5, 0.0, 1.0]])


class _CreatesFile:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path, protocol):
    control = tmp_path / "control.txt"
    pickle.loads(pickle.dumps({"x.jpg": _CreatesFile(control)}, protocol=protocol))
    assert control.exists()  # the payload works on a plain unpickler

    target = tmp_path / "pwned.txt"
    path = tmp_path / "query_evil.pkl"
    path.write_bytes(pickle.dumps({"x.jpg": _CreatesFile(target)}, protocol=protocol))
    with pytest.raises(FeatureFileError, match=r"query_evil\.pkl.*refusing to load global '(io|builtins)\.open'"):
        load_features(path)
    assert not target.exists()


def test_restricted_load_refuses_arbitrary_classes():
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global 'os.system'"):
        restricted_load(__import__("io").BytesIO(b"cos\nsystem\n(S'touch x'\ntR."))


def _write_pkl(path, d):
    with open(path, "wb") as f:
        pickle.dump(d, f)


@pytest.mark.parametrize("bad, message", [
    (np.nan, r"row 2 \(c\.jpg\) contains NaN or inf"),
    (np.inf, r"row 2 \(c\.jpg\) contains NaN or inf"),
    (0.0, r"row 2 \(c\.jpg\) is an all-zero"),
])
def test_bad_vectors_name_file_and_first_bad_row(tmp_path, bad, message):
    vecs = {n: np.ones(4, np.float32) for n in ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]}
    vecs["c.jpg"] = np.full(4, bad, np.float32)
    vecs["d.jpg"] = np.full(4, bad, np.float32)
    path = tmp_path / "q.pkl"
    _write_pkl(path, vecs)
    with pytest.raises(FeatureFileError, match=str(path).replace(".", r"\.") + ": " + message):
        load_features(path)
    assert load_features(path, validate=False).feats.shape == (4, 4)


@pytest.mark.parametrize("content, message", [
    ({"a.jpg": np.ones(4), "b.jpg": np.ones(3)}, r"row 1 \(b\.jpg\) has dimension 3, expected 4"),
    ([np.ones(4)], "expected a dict mapping image name"),
    ({1: np.ones(4)}, "row 0: key 1 is a int"),
], ids=["dimension-mismatch", "not-a-dict", "non-string-key"])
def test_bad_pickle_content_is_named(tmp_path, content, message):
    path = tmp_path / "q.pkl"
    _write_pkl(path, content)
    with pytest.raises(FeatureFileError, match=message):
        load_features(path)


@pytest.mark.parametrize("arrays, message", [
    ({"names": np.array(["a.jpg", "a.jpg"]), "feats": np.ones((2, 3), np.float32)},
     "row 1: duplicate image name 'a.jpg'"),
    ({"feats": np.ones((2, 3))}, "needs arrays 'names' and 'feats'"),
], ids=["duplicate-name", "missing-names"])
def test_bad_npz_is_named(tmp_path, arrays, message):
    path = tmp_path / "q.npz"
    np.savez(path, **arrays)
    with pytest.raises(FeatureFileError, match=message):
        load_features(path)


def test_unknown_suffix(tmp_path):
    (tmp_path / "q.txt").write_text("")
    with pytest.raises(FeatureFileError, match="unknown feature file suffix"):
        load_features(tmp_path / "q.txt")


def test_load_embeddings_ctl_export(tmp_path):
    np.save(tmp_path / "embeddings.npy", _feats())
    np.save(tmp_path / "paths.npy", np.array(["/data/q/" + n for n in NAMES]))
    fs = load_embeddings(tmp_path / "embeddings.npy", tmp_path / "paths.npy")
    assert fs.names == NAMES
    # object arrays need pickle; they go through the restricted unpickler
    np.save(tmp_path / "paths_obj.npy", np.array(["/x/" + n for n in NAMES], dtype=object), allow_pickle=True)
    assert load_embeddings(tmp_path / "embeddings.npy", tmp_path / "paths_obj.npy").names == NAMES
    np.save(tmp_path / "p4.npy", np.array(NAMES[:4]))
    with pytest.raises(FeatureFileError, match="matching 4 paths"):
        load_embeddings(tmp_path / "embeddings.npy", tmp_path / "p4.npy")


def test_find_feature_file(tmp_path):
    save_features(tmp_path / "query_a.npz", NAMES, _feats())
    assert find_feature_file(tmp_path, "a", "query").endswith("query_a.npz")
    save_features(tmp_path / "query_a.pkl", NAMES, _feats())
    assert find_feature_file(tmp_path, "a", "query").endswith("query_a.pkl")
    save_features(tmp_path / "query_b.pkl", NAMES, _feats())
    with pytest.raises(FeatureFileError, match=r"no query_c\.pkl or \.npz; query features exist for models: a, b"):
        find_feature_file(tmp_path, "c", "query")
    with pytest.raises(FeatureFileError, match="split must be one of"):
        find_feature_file(tmp_path, "a", "test")
    save_features(tmp_path / "train_a.pkl", NAMES, _feats())
    assert find_feature_file(tmp_path, "a", "train").endswith("train_a.pkl")


def test_align_reorders_and_reports_missing_and_extra():
    f = _feats()
    a = FeatureSet(NAMES, f, "a.pkl")
    b = FeatureSet(NAMES[::-1], f[::-1], "b.pkl")
    names, out = align({"a": a, "b": b})
    assert names == NAMES
    np.testing.assert_array_equal(out["b"], f)
    names, out = align({"a": a, "b": b}, order=NAMES[::-1])
    np.testing.assert_array_equal(out["a"], f[::-1])

    c = FeatureSet(NAMES[:3] + ["zzz.jpg"], f[:4], "c.pkl")
    with pytest.raises(FeatureFileError) as err:
        align({"a": a, "b": b, "c": c})
    msg = str(err.value)
    assert "'c' (c.pkl): 2 missing name(s), first: 000004.jpg, 000005.jpg; 1 extra name(s), first: zzz.jpg" in msg
    assert "'a'" not in msg and "'b'" not in msg


def test_l2_normalize():
    x = l2_normalize(_feats() * 7)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, rtol=1e-6)
    with pytest.raises(ValueError, match="row 1 has zero norm"):
        l2_normalize(np.array([[1.0, 0.0], [0.0, 0.0]]))
