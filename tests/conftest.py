"""Shared pytest fixtures: one tiny synthetic dataset and one tiny trained model per test session,
the tiny config and its overrides, and the fake dataset trees and ensemble inputs.

Each is built once, the first time a test asks for it, then shared by every test file; tests that
change the tree or the checkpoint work on a copy. Test files take these as fixtures instead of
importing helper modules from ``tests/`` by name.
"""
import json
import os
import struct

import numpy as np
import pytest

# The entry points set this for numba's OpenMP threads (idle threads sleep instead of spinning);
# the test process imports the libraries directly, so it sets it here.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# The demo's tiny config, shrunk so a run takes seconds: 48x64 input, batches of 8 ids x 4,
# 20 iterations per epoch, centre loss on (so its separate optimizer is exercised too).
TINY_OPTS = ("INPUT.SIZE_TRAIN", "[48, 64]", "INPUT.SIZE_TEST", "[48, 64]", "INPUT.PADDING", "4",
             "SOLVER.IMS_PER_BATCH", "32", "SOLVER.ITERS_PER_EPOCH", "20", "SOLVER.MAX_EPOCHS", "2",
             "SOLVER.WARMUP_EPOCHS", "0", "SOLVER.EVAL_PERIOD", "1", "SOLVER.CHECKPOINT_PERIOD", "1",
             "SOLVER.LOG_PERIOD", "5", "LOSS.CENTER_WEIGHT", "0.0005", "DATALOADER.NUM_WORKERS", "0",
             "TEST.IMS_PER_BATCH", "64")


@pytest.fixture(scope="session")
def repo_root() -> str:
    """The repository checkout the tests run from (scripts and configs are found under it)."""
    return REPO


@pytest.fixture(scope="session")
def fake_trees():
    """Builders of tiny fake dataset trees in each loader's real layout and quirks, and the names they
    write (implemented in ``tests/fake_trees.py``)."""
    import fake_trees as trees

    return trees


@pytest.fixture(scope="session")
def ensemble_fakes():
    """``build_tree`` (a fake AIC-layout tree with tracks and ground truth) and ``write_features`` (noisy
    per-model feature files for it), implemented in ``tests/ensemble_fakes.py``."""
    import ensemble_fakes as fakes

    return fakes


@pytest.fixture(scope="session")
def tiny_config() -> str:
    """Path of the demo's tiny global-model config (``global_model/configs/tiny_cpu.yml``)."""
    return os.path.join(REPO, "global_model", "configs", "tiny_cpu.yml")


@pytest.fixture(scope="session")
def tiny_opts() -> tuple:
    """``KEY VALUE`` overrides that shrink :func:`tiny_config` to a seconds-long run."""
    return TINY_OPTS


@pytest.fixture(scope="session")
def short_run() -> tuple:
    """Overrides for one 2-iteration epoch without validation: for tests of the plumbing, not of learning."""
    return ("SOLVER.MAX_EPOCHS", "1", "SOLVER.ITERS_PER_EPOCH", "2", "SOLVER.EVAL_PERIOD", "0")


@pytest.fixture(scope="session")
def tiny_overrides(tiny_opts):
    """``tiny_overrides(root, out_dir, *extra)``: the ``KEY VALUE`` list of a tiny run on dataset ``root``
    writing to ``out_dir`` (``extra`` last, so it wins), for ``load_config`` or a ``train`` command line."""

    def make(root: str, out_dir: str, *extra: str) -> list:
        return [*tiny_opts, "DATASETS.ROOT", root, "OUTPUT_DIR", out_dir, *extra]

    return make


@pytest.fixture(scope="session")
def tiny_cfg(tiny_config, tiny_overrides):
    """``tiny_cfg(root, out_dir, *extra_opts)``: the shrunk tiny config on dataset ``root``, writing to ``out_dir``."""
    from global_model.config import load_config

    def make(root: str, out_dir: str, *extra: str):
        return load_config(tiny_config, tiny_overrides(root, out_dir, *extra))

    return make


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """A small AIC20-layout synthetic dataset with query/test ground truth (24 of its 48 ids train); read-only."""
    from global_model.data.synth import generate

    root = str(tmp_path_factory.mktemp("tiny_data"))
    generate(root, seed=0, ids=48, size=(48, 64), cameras=3, real_ids=0)
    return root


@pytest.fixture(scope="session")
def tiny_train_ids(tiny_data) -> int:
    """How many training identities :func:`tiny_data` has (from the generator's ``summary.json``)."""
    with open(os.path.join(tiny_data, "summary.json")) as f:
        return json.load(f)["ids"]["train"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data, tiny_cfg) -> dict:
    """The tiny model trained for 2 epochs on :func:`tiny_data`: ``root``, ``out``, ``trainer``,
    ``checkpoint`` (``model_final.pth``), ``metrics`` (of the last epoch) and ``untrained`` (the
    validation metrics of the model before training, measured by the same trainer)."""
    from global_model.engine.trainer import build_trainer

    out = str(tmp_path_factory.mktemp("tiny_run"))
    trainer = build_trainer(tiny_cfg(tiny_data, out), progress=False)
    untrained = trainer.validate()
    metrics = trainer.train()
    return {"root": tiny_data, "out": out, "trainer": trainer, "untrained": untrained, "metrics": metrics,
            "checkpoint": os.path.join(out, "model_final.pth")}

@pytest.fixture(scope="session")
def py2_feature_pickle():
    """``build(items)``: the bytes Python 2 + numpy write for a feature dict given as ``[(b"name", vector)]``
    (byte-string keys and array buffers, SHORT_BINSTRING), for the loader's compatibility and fuzz tests."""
    return _py2_feature_pickle


def _py2_feature_pickle(items):
    """A feature dict as Python 2 + numpy pickle it: byte-string keys and buffers (SHORT_BINSTRING)."""
    def s(b):
        return b"U" + bytes([len(b)]) + b
    out = b"\x80\x02}("
    for key, vec in items:
        raw = np.asarray(vec, "<f4").tobytes()
        out += (s(key) + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
                + b"(K\x01K" + bytes([len(vec)]) + b"\x85cnumpy\ndtype\n" + s(b"f4") + b"K\x00K\x01\x87R"
                + b"(K\x03" + s(b"<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
                + b"T" + struct.pack("<I", len(raw)) + raw + b"tb")
    return out + b"u."


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Empty torch-hub and HF caches; the network counts as unreachable (backbone weight loading)."""
    import huggingface_hub.constants as hf_constants

    from global_model.modeling import backbones

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(backbones, "_reachable", lambda url, timeout=3.0: False)
    return tmp_path
