"""scripts/extract_feature_val.sh: extracts every MODELS entry, prints what it wrote, stops at the first failure."""
import os
import subprocess
import sys

import pytest

from engine_helpers import REPO, TINY_CONFIG, trained_run

SCRIPT = os.path.join(REPO, "scripts", "extract_feature_val.sh")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


def sh(env_extra):
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=REPO, **env_extra)
    return subprocess.run(["sh", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_extracts_every_model_and_prints_the_files(run, tmp_path):
    feats = str(tmp_path / "features")
    ckpt = run["checkpoint"]
    res = sh({"MODELS": f"a::{ckpt} mgn_b:{TINY_CONFIG}:{ckpt}", "DATA_ROOT": run["root"], "FEATURES_DIR": feats,
              "EXTRACT_ARGS": "INPUT.SIZE_TEST [48,64]"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "mgn_b: mgn_model extract" in res.stdout and "a: global_model extract" in res.stdout
    for name in ("a", "mgn_b"):
        for split in ("query", "gallery"):
            path = os.path.join(feats, f"{split}_{name}.pkl")
            assert f"wrote {path}" in res.stdout and os.path.isfile(path)
    assert "extracted 2 model(s)" in res.stdout


def test_stops_at_the_first_failure_with_its_message(run, tmp_path):
    feats = str(tmp_path / "features")
    ckpt = run["checkpoint"]
    res = sh({"MODELS": f"gone::{tmp_path}/missing.pth ok::{ckpt}", "DATA_ROOT": run["root"], "FEATURES_DIR": feats})
    assert res.returncode == 1 and f"gone: checkpoint {tmp_path}/missing.pth not found" in res.stderr
    assert not os.path.exists(feats)  # the second model was not run
    res = sh({"MODELS": f"bad::{ckpt} ok::{ckpt}", "DATA_ROOT": run["root"], "FEATURES_DIR": feats,
              "EXTRACT_ARGS": "NOPE.KEY 1"})
    assert res.returncode == 1
    assert "unknown config key 'NOPE.KEY'" in res.stderr and "bad: extraction failed" in res.stderr
    assert "ok:" not in res.stdout
    res = sh({"MODELS": "just-a-name", "DATA_ROOT": run["root"], "FEATURES_DIR": feats})
    assert res.returncode == 1 and "expected name:config:checkpoint" in res.stderr
    res = sh({"MODELS": f"a::{ckpt}", "DATA_ROOT": str(tmp_path / "nowhere"), "FEATURES_DIR": feats})
    assert res.returncode == 1 and "is not a folder" in res.stderr
