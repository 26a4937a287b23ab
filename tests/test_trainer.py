"""Trainer: learns on synthetic data, resumes bit-exactly after a kill, CLI, schedule, groups, AMP, checkpoints, DDP."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from engine_helpers import REPO, TINY_CONFIG, TINY_OPTS, tiny_cfg, tiny_data, trained_run
from global_model.cli import main
from global_model.config import load_config
from global_model.engine.amp import cpu_has_native_bf16, needs_grad_scaler, resolve_amp
from global_model.engine.checkpoint import (CheckpointError, capture_rng_state, load_checkpoint, load_model_weights,
                                            restore_rng_state, save_checkpoint)
from global_model.engine.solver import WarmupScheduler, build_optimizer, param_groups
from global_model.engine.trainer import Trainer, build_trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


def test_two_epochs_beat_the_untrained_model_and_write_checkpoints(run):
    before, after = run["untrained"]["mAP"], run["metrics"]["mAP"]
    assert after > before + 0.05, (before, after)
    assert run["metrics"]["loss"] < 10
    for name in ("last.pth", "best.pth", "model_final.pth"):
        assert os.path.isfile(os.path.join(run["out"], name))
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(run["out"], "tb")))
    final = load_checkpoint(run["checkpoint"])
    assert final["num_classes"] == run["trainer"].num_classes == 24 and final["epoch"] == 2
    assert "MAX_EPOCHS: 2" in final["cfg"]
    last = load_checkpoint(os.path.join(run["out"], "last.pth"))
    assert last["iteration"] == 40 and last["best_map"] == pytest.approx(max(last["best_map"], after))


class Killed(Exception):
    pass


class KilledAfterFirstEpoch(Trainer):
    def after_epoch(self, epoch):
        super().after_epoch(epoch)  # writes last.pth
        if epoch == 1:
            raise Killed


def test_resume_after_a_kill_ends_with_the_same_weights(run, tmp_path):
    cfg = tiny_cfg(run["root"], str(tmp_path))
    with pytest.raises(Killed):
        KilledAfterFirstEpoch(cfg, progress=False).train()
    assert load_checkpoint(str(tmp_path / "last.pth"))["epoch"] == 1
    resumed = build_trainer(cfg, resume="auto", progress=False)
    assert (resumed.epoch, resumed.iteration) == (1, 20)
    resumed.train()
    reference = run["trainer"]
    for name, tensor in reference.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    for name, tensor in reference.loss_fn.state_dict().items():  # centre-loss centres (own optimizer)
        assert torch.equal(tensor, resumed.loss_fn.state_dict()[name]), name
    assert resumed.best_map == reference.best_map


def test_train_cli_saves_config_resumes_and_reports_bad_keys(run, tmp_path, capsys):
    out = str(tmp_path / "cli")
    args = ["train", "--config", TINY_CONFIG, "--no-progress", *TINY_OPTS, "DATASETS.ROOT", run["root"],
            "OUTPUT_DIR", out, "SOLVER.MAX_EPOCHS", "1", "SOLVER.ITERS_PER_EPOCH", "2", "SOLVER.EVAL_PERIOD", "0"]
    assert main(args) == 0
    assert load_config(os.path.join(out, "config.yml")).SOLVER.ITERS_PER_EPOCH == 2
    assert os.path.isfile(os.path.join(out, "model_final.pth")) and os.path.isfile(os.path.join(out, "log.txt"))
    assert main(["train", "--config", TINY_CONFIG, "--resume", "auto", "--no-progress", *args[4:]]) == 0
    assert "resumed from" in open(os.path.join(out, "log.txt")).read()
    capsys.readouterr()
    assert main(["train", "--config", TINY_CONFIG, "SOLVER.BASE_LRR", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'SOLVER.BASE_LRR'" in err and "SOLVER.BASE_LR" in err
    assert main(["train", "--config", TINY_CONFIG, "--resume", str(tmp_path / "nope.pth"), *args[4:]]) == 1
    assert "checkpoint not found" in capsys.readouterr().err


def test_resume_refuses_a_weights_only_checkpoint(run, tmp_path):
    with pytest.raises(CheckpointError, match="cannot resume.*model_final"):
        build_trainer(tiny_cfg(run["root"], str(tmp_path)), resume=run["checkpoint"], progress=False)


# ----------------------------------------------------------------------------- schedule and groups

def sched_cfg(*opts):
    return load_config(None, ["SOLVER.BASE_LR", "1.0", "SOLVER.MAX_EPOCHS", "4", *opts])


def lrs(cfg, iters_per_epoch=10):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    s = WarmupScheduler(opt, cfg, iters_per_epoch)
    out = []
    for _ in range(40):
        out.append(opt.param_groups[0]["lr"])
        s.step()
    return out, s


def test_warmup_then_multistep():
    cfg = sched_cfg("SOLVER.WARMUP_EPOCHS", "1", "SOLVER.WARMUP_FACTOR", "0.1", "SOLVER.STEPS", "[2, 3]")
    out, s = lrs(cfg)
    assert out[0] == pytest.approx(0.1) and out[5] == pytest.approx(0.55)  # linear, iteration-based
    assert out[10:20] == [1.0] * 10
    assert out[20] == pytest.approx(0.1) and out[30] == pytest.approx(0.01)
    again = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    WarmupScheduler(again, cfg, 10).load_state_dict({"iteration": 25})  # resume: LR follows the iteration
    assert again.param_groups[0]["lr"] == pytest.approx(out[25])
    assert s.state_dict() == {"iteration": 40}


def test_cosine_decays_to_the_floor():
    out, _ = lrs(sched_cfg("SOLVER.SCHED", "cosine", "SOLVER.ETA_MIN_LR", "0.01"))
    assert out[0] == 1.0 and out[20] == pytest.approx(0.505) and out[-1] > 0.01
    assert all(a >= b for a, b in zip(out, out[1:]))
    with pytest.raises(ValueError, match="SOLVER.SCHED"):
        lrs(sched_cfg("SOLVER.SCHED", "poly"))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.Linear(4, 2)


def test_param_groups_apply_bias_norm_and_backbone_factors():
    cfg = load_config(None, ["SOLVER.BASE_LR", "0.1", "SOLVER.BIAS_LR_FACTOR", "2.0", "SOLVER.WEIGHT_DECAY", "0.01",
                             "SOLVER.WEIGHT_DECAY_BIAS", "0.0", "SOLVER.WEIGHT_DECAY_NORM", "0.0",
                             "SOLVER.BACKBONE_LR_FACTOR", "0.5", "SOLVER.OPTIMIZER", "SGD", "SOLVER.NESTEROV", "True"])
    m = Tiny()
    groups = param_groups(m, cfg)
    where = {id(p): (g["lr_factor"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert where[id(m.backbone[0].weight)] == (0.5, 0.01)
    assert where[id(m.backbone[0].bias)] == (1.0, 0.0)  # bias factor x backbone factor
    assert where[id(m.backbone[1].weight)] == (0.5, 0.0)  # BN weight: no decay
    assert where[id(m.head.weight)] == (1.0, 0.01) and where[id(m.head.bias)] == (2.0, 0.0)
    opt = build_optimizer(groups, cfg)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"]
    for name, cls in (("Adam", torch.optim.Adam), ("AdamW", torch.optim.AdamW)):
        assert isinstance(build_optimizer(param_groups(m, cfg), load_config(None, ["SOLVER.OPTIMIZER", name])), cls)
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER"):
        build_optimizer(groups, load_config(None, ["SOLVER.OPTIMIZER", "LBFGS"]))


def test_amp_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_amp("off", cpu) is None and resolve_amp("bf16", cpu) is torch.bfloat16
    assert resolve_amp("auto", cpu) is (torch.bfloat16 if cpu_has_native_bf16() else None)
    assert resolve_amp("auto", cuda) is torch.float16 and needs_grad_scaler(torch.float16, cuda)
    assert not needs_grad_scaler(torch.bfloat16, cpu)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_amp("fp16", cpu)
    with pytest.raises(ValueError, match="not one of"):
        resolve_amp("int8", cpu)


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_round_trip_rng_and_safe_loading(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(1)
    state = capture_rng_state()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    path = str(tmp_path / "c.pth")
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "rng": state})
    assert [p.name for p in tmp_path.iterdir()] == ["c.pth"]  # no temp file left
    restore_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    torch.save({"w": torch.zeros(1)}, str(tmp_path / "bare.pth"))
    assert set(load_checkpoint(str(tmp_path / "bare.pth"))) == {"model"}
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth: not a readable"):
        load_checkpoint(str(tmp_path / "junk.pth"))

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"model": {}, "x": Evil()}, str(tmp_path / "evil.pth"))
    with pytest.raises(CheckpointError, match="evil.pth"):
        load_checkpoint(str(tmp_path / "evil.pth"))


def test_weights_for_another_architecture_name_the_layers():
    src = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    dst = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 2), nn.ReLU(), nn.Linear(2, 2))
    with pytest.raises(CheckpointError) as e:
        load_model_weights(dst, src.state_dict(), source="w.pth")
    msg = str(e.value)
    assert "w.pth does not fit" in msg and "0.weight: checkpoint (3, 4) vs model (5, 4)" in msg
    assert "missing in checkpoint (2)" in msg and "3.weight" in msg
    load_model_weights(src, {"module." + k: v for k, v in src.state_dict().items()}, source="ddp.pth")


# ----------------------------------------------------------------------------- DDP via torchrun

def test_torchrun_two_cpu_processes(tmp_path_factory, tmp_path):
    root = tiny_data(tmp_path_factory)
    out = str(tmp_path / "ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "global_model",
           "train", "--config", TINY_CONFIG, "--no-progress", *TINY_OPTS, "DATASETS.ROOT", root, "OUTPUT_DIR", out,
           "SOLVER.MAX_EPOCHS", "1", "SOLVER.ITERS_PER_EPOCH", "2", "SOLVER.IMS_PER_BATCH", "8",
           "SOLVER.EVAL_PERIOD", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "(2 process(es))" in open(os.path.join(out, "log.txt")).read()
    assert load_checkpoint(os.path.join(out, "model_final.pth"))["epoch"] == 1
