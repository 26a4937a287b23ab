"""scripts/extract_feature_val.sh: extracts every MODELS entry, prints what it wrote, stops at the first failure."""
import os
import subprocess
import sys

import pytest


def sh(repo_root, env_extra):
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=repo_root, **env_extra)
    return subprocess.run(["sh", os.path.join(repo_root, "scripts", "extract_feature_val.sh")], cwd=repo_root,
                          env=env, capture_output=True, text=True, timeout=300)


def test_extracts_every_model_with_global_model_whatever_its_name(repo_root, tiny_run, tiny_config, tmp_path):
    feats = str(tmp_path / "features")
    ckpt = tiny_run["checkpoint"]
    res = sh(repo_root, {"MODELS": f"a::{ckpt} mgn_b:{tiny_config}:{ckpt}", "DATA_ROOT": tiny_run["root"],
                         "FEATURES_DIR": feats, "EXTRACT_ARGS": "INPUT.SIZE_TEST [48,64]"})
    assert res.returncode == 0, res.stderr[-3000:]
    # The config (here a global model's) picks the family, never the model's name.
    assert "mgn_b: global_model extract" in res.stdout and "a: global_model extract" in res.stdout
    for name in ("a", "mgn_b"):
        for split in ("query", "gallery"):
            path = os.path.join(feats, f"{split}_{name}.pkl")
            assert f"wrote {path}" in res.stdout and os.path.isfile(path)
    assert "extracted 2 model(s)" in res.stdout


@pytest.mark.parametrize("models, env, messages", [
    ("gone::{tmp}/missing.pth ok::{ckpt}", {}, ["gone: checkpoint {tmp}/missing.pth not found"]),
    ("bad::{ckpt} ok::{ckpt}", {"EXTRACT_ARGS": "NOPE.KEY 1"},
     ["error: command line: unknown config key 'NOPE.KEY'", "bad: extraction failed"]),
    ("just-a-name", {}, ["bad MODELS entry 'just-a-name': expected name:config:checkpoint"]),
    ("a::{ckpt}", {"DATA_ROOT": "{tmp}/nowhere"}, ["DATA_ROOT {tmp}/nowhere is not a folder"]),
], ids=["missing-checkpoint", "bad-override", "bad-entry", "no-data-root"])
def test_stops_at_the_first_failure_with_its_message(repo_root, tiny_run, tmp_path, models, env, messages):
    feats = str(tmp_path / "features")
    fill = {"tmp": str(tmp_path), "ckpt": tiny_run["checkpoint"]}
    env = {"MODELS": models.format(**fill), "DATA_ROOT": tiny_run["root"], "FEATURES_DIR": feats,
           **{k: v.format(**fill) for k, v in env.items()}}
    res = sh(repo_root, env)
    assert res.returncode == 1
    for message in messages:
        assert message.format(**fill) in res.stderr
    assert "ok:" not in res.stdout and not os.path.exists(feats)  # nothing after the failure ran
