"""Shared by the trainer/extractor/extract-script tests: one tiny synthetic dataset and one trained
tiny model per pytest session (cached here, so each is built once whichever test file asks first)."""
import os

from global_model.config import load_config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TINY_CONFIG = os.path.join(REPO, "global_model", "configs", "tiny_cpu.yml")

# The demo's tiny config, shrunk so a run takes seconds: 48x64 input, batches of 8 ids x 4,
# 20 iterations per epoch, centre loss on (so its separate optimizer is exercised too).
TINY_OPTS = ["INPUT.SIZE_TRAIN", "[48, 64]", "INPUT.SIZE_TEST", "[48, 64]", "INPUT.PADDING", "4",
             "SOLVER.IMS_PER_BATCH", "32", "SOLVER.ITERS_PER_EPOCH", "20", "SOLVER.MAX_EPOCHS", "2",
             "SOLVER.WARMUP_EPOCHS", "0", "SOLVER.EVAL_PERIOD", "1", "SOLVER.CHECKPOINT_PERIOD", "1",
             "SOLVER.LOG_PERIOD", "5", "LOSS.CENTER_WEIGHT", "0.0005", "DATALOADER.NUM_WORKERS", "0",
             "TEST.IMS_PER_BATCH", "64"]

_CACHE = {}


def tiny_data(tmp_path_factory) -> str:
    """A small AIC20-layout synthetic dataset with query/test ground truth (24 train ids)."""
    if "data" not in _CACHE:
        from global_model.data.synth import generate

        root = str(tmp_path_factory.mktemp("engine_synth"))
        generate(root, seed=0, ids=48, size=(48, 64), cameras=3, real_ids=0)
        _CACHE["data"] = root
    return _CACHE["data"]


def tiny_cfg(root: str, out_dir: str, *extra: str):
    return load_config(TINY_CONFIG, TINY_OPTS + ["DATASETS.ROOT", root, "OUTPUT_DIR", out_dir, *extra])


def trained_run(tmp_path_factory) -> dict:
    """Train the tiny model for 2 epochs once; returns its output dir, the trainer and the
    validation mAP of the untrained model (measured by the same trainer before training)."""
    if "run" not in _CACHE:
        from global_model.engine.trainer import build_trainer

        root = tiny_data(tmp_path_factory)
        out = str(tmp_path_factory.mktemp("engine_run"))
        trainer = build_trainer(tiny_cfg(root, out), progress=False)
        untrained = trainer.validate()
        metrics = trainer.train()
        _CACHE["run"] = {"root": root, "out": out, "trainer": trainer, "untrained": untrained, "metrics": metrics,
                         "checkpoint": os.path.join(out, "model_final.pth")}
    return _CACHE["run"]
