"""Hostile and corrupt inputs (issue 18): every outcome is a result or a project error naming the input."""
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest

from ensembles.fusion import FeatureBlock, FusionError, make_blocks
from ensembles.inputs import load_inputs
from ensembles.pipeline import Labels, Pipeline, PipelineError, State, run_pipeline
from ensembles.search import SearchError, search
from global_model.config import load_config
from post_processing.errors import ReidError
from post_processing.features import FeatureFileError, load_features, save_features


def _mutations(data: bytes, count: int, seed: int):
    """``count`` corrupt variants of ``data``: flipped, overwritten, inserted, deleted bytes, truncations."""
    rng = np.random.default_rng(seed)
    special = [0, 1, 0x7F, 0x80, 0xFF, ord("("), ord("t"), ord("R"), ord("b"), ord("c"), ord("K"), ord("J")]
    for _ in range(count):
        buf = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            op, pos = int(rng.integers(5)), int(rng.integers(len(buf)))
            if op == 0:
                buf[pos] ^= 1 << int(rng.integers(8))
            elif op == 1:
                buf[pos] = special[int(rng.integers(len(special)))]
            elif op == 2:
                buf[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 5)), dtype=np.uint8))
            elif op == 3:
                del buf[pos:pos + int(rng.integers(1, 5))]
            else:
                buf[pos:pos + 4] = struct.pack("<i", int(rng.choice([-1, 2 ** 31 - 1, 2 ** 30, -2 ** 31])))
        yield bytes(buf)


def _py3_protocol2(tmp_path):
    """Protocol 2 from Python 3: bytes (array buffers) go through the allowed ``_codecs.encode``."""
    return pickle.dumps({"a.jpg": np.array([1.0, 2.0], np.float32), "b.jpg": np.array([3.0, 4.0], np.float32)},
                        protocol=2)


def _with_metadata(tmp_path):
    path = tmp_path / "query_m.pkl"
    save_features(path, ["a.jpg", "b.jpg"], np.array([[1.0, 2.0], [3.0, 0.5]], np.float32),
                  meta={"fingerprint": "abc123", "checkpoint": "m.pth", "skipped": ["c.jpg"]})
    return path.read_bytes()


@pytest.mark.parametrize("make,count,seed", [
    (_with_metadata, 300, 0),
    ("python2", 300, 1),
    (_py3_protocol2, 300, 2),
], ids=["protocol4+metadata", "python2", "python3-protocol2"])
def test_mutated_feature_pickles_load_or_raise_feature_file_error(tmp_path, make, count, seed, py2_feature_pickle):
    if make == "python2":
        data = py2_feature_pickle([(b"a.jpg", [1.5, -2.0]), (b"b.jpg", [0.5, 1.0])])
    else:
        data = make(tmp_path)
    assert load_features(_write(tmp_path, "valid.pkl", data)).feats.shape == (2, 2)  # the seed file is valid
    path = tmp_path / "mutant.pkl"
    for i, mutant in enumerate(_mutations(data, count, seed)):
        path.write_bytes(mutant)
        try:
            fs = load_features(path)
        except FeatureFileError as e:
            assert str(path) in str(e), f"mutation {i}: {e}"
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"mutation {i} ({mutant!r}) raised {type(e).__name__}: {e}")
        assert fs.feats.dtype == np.float32 and fs.feats.ndim == 2 and np.isfinite(fs.feats).all()


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("payload", [
    b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00nope!\x86R.",  # LookupError before
    b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00utf-7\x86R.",  # other codecs refused
    b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x06\x00\x00\x00base64\x86R.",
], ids=["unknown-codec", "utf-7", "base64"])
def test_codecs_encode_is_latin1_only(tmp_path, payload):
    with pytest.raises(FeatureFileError, match="latin-1"):
        load_features(_write(tmp_path, "q.pkl", payload))


def test_non_numeric_arrays_are_refused(tmp_path):
    path = _write(tmp_path, "q.pkl", pickle.dumps({"a.jpg": np.array(["x", "y"])}, protocol=4))
    with pytest.raises(FeatureFileError, match=r"q\.pkl: row 0 \(a\.jpg\).*dtype"):
        load_features(path)


# --- item 7: the pipeline YAML is validated completely before anything is loaded -------------------



@pytest.mark.parametrize("data,match", [
    ({"steps": [{"name": ["rerank"]}]}, r"step 1: key 'name': expected a step name.*\['rerank'\]"),
    ({"steps": [{"name": "metric", "params": {"bogus": 1}}]}, r"step 1 'metric': key 'params': unknown LFDA "
                                                               r"parameter 'bogus'; valid: n_components, k"),
    ({"steps": [{"name": "metric", "method": "nca", "params": {"k": 3}}]}, r"unknown NCA parameter 'k'"),
    ({"steps": [{"name": "rerank", None: 3}]}, r"step 1: key None is a NoneType"),
    ({"fusion": ["concat"]}, r"key 'fusion': expected a name"),
    ({"distance": {"a": 1}}, r"key 'distance': expected a name"),
])
def test_pipeline_yaml_fields_are_checked_before_loading(data, match):
    with pytest.raises(PipelineError, match=match) as info:
        Pipeline.from_dict(data, "pipe.yml")
    assert str(info.value).startswith("pipe.yml: ")


def test_valid_metric_params_are_accepted():
    pipe = Pipeline.from_dict({"steps": [{"name": "metric", "method": "lfda", "params": {"k": 3}}]}, "p.yml")
    assert pipe.steps[0].params["params"] == {"k": 3}


def test_lfda_non_finite_transform_is_a_pipeline_error_suggesting_pca_dim():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(6, 8)).astype(np.float32)
    labels = Labels(np.zeros(2, int), np.zeros(2, int), np.zeros(2, int), np.ones(2, int), -np.ones(2, int),
                    train_pids=np.repeat(np.arange(3), 2))
    state = State([FeatureBlock("m1", 1.0, feats[:2], feats[2:4], feats)], labels)
    pipe = Pipeline.from_dict({"steps": [{"name": "metric"}]})
    with pytest.raises(PipelineError, match=r"step 1 'metric': model 'm1': LFDA learned a non-finite.*--pca-dim"):
        run_pipeline(pipe, state)


# --- item 11: messages name the file, key or option --------------------------------------------------


def test_duplicate_in_name_query_txt_names_the_file_and_the_name(tmp_path, ensemble_fakes):
    tree = ensemble_fakes.build_tree(str(tmp_path / "data"), n_ids=4, per_id=2, ground_truth=False)
    ensemble_fakes.write_features(str(tmp_path / "f"), tree, {"m1": 0.1})
    with open(os.path.join(tree.root, "name_query.txt"), "a") as f:
        f.write(tree.query[1] + "\n")
    with pytest.raises(FeatureFileError) as info:
        load_inputs(str(tmp_path / "f"), tree.root, ["m1"])
    assert os.path.join(tree.root, "name_query.txt") in str(info.value) and repr(tree.query[1]) in str(info.value)


def test_near_zero_norm_vector_names_the_file_and_row(tmp_path):
    feats = np.ones((3, 4), np.float32)
    feats[1] = 1e-30  # not all zero, but its float32 norm underflows to 0
    path = tmp_path / "gallery_m1.pkl"
    save_features(path, ["a.jpg", "b.jpg", "c.jpg"], feats)
    with pytest.raises(FeatureFileError, match=rf"{path}: row 1 \(b\.jpg\): its norm underflows to 0"):
        load_features(path)


def test_zero_norm_in_fusion_names_the_model():
    ok = np.ones((2, 4), np.float32)
    with pytest.raises(FusionError, match=r"model 'm2', gallery features: l2_normalize: row 0 has zero norm"):
        make_blocks(["m1", "m2"], {"query": {"m1": ok, "m2": ok}, "gallery": {"m1": ok, "m2": np.zeros((2, 4))}})


def test_binary_config_file_is_named_as_not_text_yaml(tmp_path):
    path = tmp_path / "model_final.pth"
    path.write_bytes(b"PK\x03\x04\x00\x00\x08\x08\x00\x00\xff\xfe\x80\x81binary")
    with pytest.raises(ReidError, match=rf"{path}: not a text YAML config"):
        load_config(str(path))


def test_search_dimension_mismatch_names_both_sources():
    with pytest.raises(SearchError, match=r"q\.pkl \(2×8\) and g\.pkl \(3×4\) have different feature dimensions"):
        search(np.ones((2, 8), np.float32), np.ones((3, 4), np.float32), query_source="q.pkl",
               gallery_source="g.pkl")


def test_models_entry_with_a_space_is_refused_with_the_expected_form(repo_root, tmp_path):
    (tmp_path / "my").write_bytes(b"")  # the first word's "checkpoint" exists: only the form check can refuse
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=repo_root, DATA_ROOT=str(tmp_path),
               FEATURES_DIR=str(tmp_path / "features"), MODELS="m1::my ck.pth")
    res = subprocess.run(["sh", os.path.join(repo_root, "scripts", "extract_feature_val.sh")], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "bad MODELS entry 'ck.pth'" in res.stderr and "MODELS='m1::my ck.pth'" in res.stderr
    assert "expected name:config:checkpoint" in res.stderr and "must not contain spaces" in res.stderr
    assert not (tmp_path / "features").exists()
