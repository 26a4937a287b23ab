"""Trainer: learns on synthetic data, resumes bit-exactly after a kill, CLI, schedule, groups, AMP, checkpoints, DDP."""
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from global_model.cli import main
from global_model.config import load_config
from global_model.engine.amp import cpu_has_native_bf16, needs_grad_scaler, resolve_amp
from global_model.engine.checkpoint import (CheckpointError, capture_rng_state, load_checkpoint, load_model_weights,
                                            restore_rng_state, save_checkpoint)
from global_model.engine.solver import WarmupScheduler, build_optimizer, param_groups
from global_model.engine.trainer import Trainer, build_trainer


@pytest.fixture
def solver(tiny_run):
    """The SOLVER node the shared tiny run was trained with (epochs, iterations per epoch)."""
    return tiny_run["trainer"].cfg.SOLVER


def test_two_epochs_beat_the_untrained_model(tiny_run):
    before, after = tiny_run["untrained"]["mAP"], tiny_run["metrics"]["mAP"]
    assert after > before + 0.05, (before, after)
    assert tiny_run["metrics"]["loss"] < 10


@pytest.mark.parametrize("name", ["last.pth", "best.pth", "model_final.pth"])
def test_training_writes_the_checkpoint(tiny_run, name):
    assert os.path.isfile(os.path.join(tiny_run["out"], name))


def test_training_writes_tensorboard_events(tiny_run):
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(tiny_run["out"], "tb")))


def test_final_checkpoint_holds_the_class_count_last_epoch_and_config(tiny_run, tiny_train_ids, solver):
    final = load_checkpoint(tiny_run["checkpoint"])
    assert final["num_classes"] == tiny_run["trainer"].num_classes == tiny_train_ids
    assert final["epoch"] == solver.MAX_EPOCHS
    assert f"MAX_EPOCHS: {solver.MAX_EPOCHS}" in final["cfg"]


def test_last_checkpoint_holds_the_iteration_and_best_map(tiny_run, solver):
    last = load_checkpoint(os.path.join(tiny_run["out"], "last.pth"))
    assert last["iteration"] == solver.MAX_EPOCHS * solver.ITERS_PER_EPOCH
    assert last["best_map"] == pytest.approx(max(last["best_map"], tiny_run["metrics"]["mAP"]))


class Killed(Exception):
    pass


class KilledAfterFirstEpoch(Trainer):
    def after_epoch(self, epoch):
        super().after_epoch(epoch)  # writes last.pth
        if epoch == 1:
            raise Killed


def test_resume_after_a_kill_ends_with_the_same_weights(tiny_run, tiny_cfg, solver, tmp_path):
    cfg = tiny_cfg(tiny_run["root"], str(tmp_path))
    with pytest.raises(Killed):
        KilledAfterFirstEpoch(cfg, progress=False).train()
    assert load_checkpoint(str(tmp_path / "last.pth"))["epoch"] == 1
    resumed = build_trainer(cfg, resume="auto", progress=False)
    assert (resumed.epoch, resumed.iteration) == (1, solver.ITERS_PER_EPOCH)
    resumed.train()
    reference = tiny_run["trainer"]
    for name, tensor in reference.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    for name, tensor in reference.loss_fn.state_dict().items():  # centre-loss centres (own optimizer)
        assert torch.equal(tensor, resumed.loss_fn.state_dict()[name]), name
    assert resumed.best_map == reference.best_map


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, tiny_data, tiny_config, tiny_overrides, short_run):
    """A short run of the ``train`` command: its output folder and its ``KEY VALUE`` overrides."""
    out = str(tmp_path_factory.mktemp("cli") / "run")
    opts = tiny_overrides(tiny_data, out, *short_run)
    assert main(["train", "--config", tiny_config, "--no-progress", *opts]) == 0
    return {"out": out, "opts": opts}


def test_train_cli_saves_the_config_it_ran(cli_run, tiny_config):
    assert load_config(os.path.join(cli_run["out"], "config.yml")) == load_config(tiny_config, cli_run["opts"])


@pytest.mark.parametrize("name", ["model_final.pth", "log.txt"])
def test_train_cli_writes_the_final_weights_and_log(cli_run, name):
    assert os.path.isfile(os.path.join(cli_run["out"], name))


def test_train_cli_resumes_auto_from_the_last_checkpoint(cli_run, tiny_config):
    assert main(["train", "--config", tiny_config, "--resume", "auto", "--no-progress", *cli_run["opts"]]) == 0
    assert "resumed from" in open(os.path.join(cli_run["out"], "log.txt")).read()


@pytest.mark.parametrize("flags, extra, code, messages", [
    ((), ("SOLVER.BASE_LRR", "0.1"), 2, ("unknown config key 'SOLVER.BASE_LRR'", "SOLVER.BASE_LR")),
    (("--resume", "{tmp}/nope.pth"), (), 1, ("checkpoint not found",)),
], ids=["misspelt_key_is_usage_error", "missing_resume_checkpoint_is_runtime_error"])
def test_train_cli_reports_bad_input_in_one_line(tiny_data, tiny_config, tiny_overrides, short_run, tmp_path, capsys,
                                                 flags, extra, code, messages):
    flags = [f.format(tmp=tmp_path) for f in flags]
    opts = tiny_overrides(tiny_data, str(tmp_path / "run"), *short_run, *extra)
    assert main(["train", "--config", tiny_config, *flags, *opts]) == code
    err = capsys.readouterr().err
    for message in messages:
        assert message in err


def test_resume_refuses_a_weights_only_checkpoint(tiny_run, tiny_cfg, tmp_path):
    with pytest.raises(CheckpointError, match="cannot resume.*model_final"):
        build_trainer(tiny_cfg(tiny_run["root"], str(tmp_path)), resume=tiny_run["checkpoint"], progress=False)


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


WARMUP_MULTISTEP = ("SOLVER.WARMUP_EPOCHS", "1", "SOLVER.WARMUP_FACTOR", "0.1", "SOLVER.STEPS", "[2, 3]")


def test_warmup_then_multistep():
    out, s = lrs(sched_cfg(*WARMUP_MULTISTEP))
    assert out[0] == pytest.approx(0.1) and out[5] == pytest.approx(0.55)  # linear, iteration-based
    assert out[10:20] == [1.0] * 10
    assert out[20] == pytest.approx(0.1) and out[30] == pytest.approx(0.01)
    assert s.state_dict() == {"iteration": 40}


def test_scheduler_resumed_at_an_iteration_sets_its_lr():
    cfg = sched_cfg(*WARMUP_MULTISTEP)
    out, _ = lrs(cfg)
    again = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    WarmupScheduler(again, cfg, 10).load_state_dict({"iteration": 25})
    assert again.param_groups[0]["lr"] == pytest.approx(out[25])


def test_cosine_decays_to_the_floor():
    out, _ = lrs(sched_cfg("SOLVER.SCHED", "cosine", "SOLVER.ETA_MIN_LR", "0.01"))
    assert out[0] == 1.0 and out[20] == pytest.approx(0.505) and out[-1] > 0.01
    assert all(a >= b for a, b in zip(out, out[1:]))


def test_unknown_schedule_names_the_key():
    with pytest.raises(ValueError, match="SOLVER.SCHED"):
        lrs(sched_cfg("SOLVER.SCHED", "poly"))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.Linear(4, 2)


def group_cfg(*opts):
    return load_config(None, ["SOLVER.BASE_LR", "0.1", "SOLVER.BIAS_LR_FACTOR", "2.0", "SOLVER.WEIGHT_DECAY", "0.01",
                              "SOLVER.WEIGHT_DECAY_BIAS", "0.0", "SOLVER.WEIGHT_DECAY_NORM", "0.0",
                              "SOLVER.BACKBONE_LR_FACTOR", "0.5", *opts])


def test_param_groups_apply_bias_norm_and_backbone_factors():
    m = Tiny()
    where = {id(p): (g["lr_factor"], g["weight_decay"]) for g in param_groups(m, group_cfg()) for p in g["params"]}
    assert where[id(m.backbone[0].weight)] == (0.5, 0.01)
    assert where[id(m.backbone[0].bias)] == (1.0, 0.0)  # bias factor x backbone factor
    assert where[id(m.backbone[1].weight)] == (0.5, 0.0)  # BN weight: no decay
    assert where[id(m.head.weight)] == (1.0, 0.01) and where[id(m.head.bias)] == (2.0, 0.0)


def test_sgd_takes_nesterov_from_the_config():
    cfg = group_cfg("SOLVER.OPTIMIZER", "SGD", "SOLVER.NESTEROV", "True")
    opt = build_optimizer(param_groups(Tiny(), cfg), cfg)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"]


@pytest.mark.parametrize("name, cls", [("Adam", torch.optim.Adam), ("AdamW", torch.optim.AdamW)])
def test_optimizer_is_chosen_by_name(name, cls):
    assert isinstance(build_optimizer(param_groups(Tiny(), group_cfg()), load_config(None, ["SOLVER.OPTIMIZER", name])),
                      cls)


def test_unknown_optimizer_names_the_key():
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER"):
        build_optimizer(param_groups(Tiny(), group_cfg()), load_config(None, ["SOLVER.OPTIMIZER", "LBFGS"]))


CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("choice, device, dtype", [
    ("off", CPU, None), ("bf16", CPU, torch.bfloat16), ("auto", CUDA, torch.float16),
    ("auto", CPU, torch.bfloat16 if cpu_has_native_bf16() else None),
])
def test_amp_choice(choice, device, dtype):
    assert resolve_amp(choice, device) is dtype


@pytest.mark.parametrize("dtype, device, scaler", [(torch.float16, CUDA, True), (torch.bfloat16, CPU, False)])
def test_grad_scaler_only_for_fp16(dtype, device, scaler):
    assert needs_grad_scaler(dtype, device) is scaler


@pytest.mark.parametrize("choice, message", [("fp16", "needs a CUDA device"), ("int8", "not one of")])
def test_amp_choice_errors(choice, message):
    with pytest.raises(ValueError, match=message):
        resolve_amp(choice, CPU)


# ----------------------------------------------------------------------------- checkpoints

def rng_draw():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_checkpoint_round_trip_restores_the_rng_streams(tmp_path):
    torch.manual_seed(1)
    state = capture_rng_state()
    expected = rng_draw()
    path = str(tmp_path / "c.pth")
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "rng": state})
    restore_rng_state(load_checkpoint(path)["rng"])
    assert rng_draw() == expected


def test_save_checkpoint_leaves_no_temp_file(tmp_path):
    save_checkpoint(str(tmp_path / "c.pth"), {"model": {"w": torch.ones(2)}, "rng": capture_rng_state()})
    assert [p.name for p in tmp_path.iterdir()] == ["c.pth"]


def test_a_bare_state_dict_loads_as_model_weights(tmp_path):
    torch.save({"w": torch.zeros(1)}, str(tmp_path / "bare.pth"))
    assert set(load_checkpoint(str(tmp_path / "bare.pth"))) == {"model"}


class Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def write_junk(path):
    with open(path, "wb") as f:
        f.write(b"not a checkpoint")


def write_evil_pickle(path):
    torch.save({"model": {}, "x": Evil()}, path)


@pytest.mark.parametrize("name, write, message", [
    ("junk.pth", write_junk, "junk.pth: not a readable"),
    ("evil.pth", write_evil_pickle, "evil.pth"),  # safe loading: refuses to run os.system
])
def test_unreadable_checkpoint_is_named(tmp_path, name, write, message):
    write(str(tmp_path / name))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(str(tmp_path / name))


def test_weights_for_another_architecture_name_the_layers():
    src = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    dst = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 2), nn.ReLU(), nn.Linear(2, 2))
    with pytest.raises(CheckpointError) as e:
        load_model_weights(dst, src.state_dict(), source="w.pth")
    msg = str(e.value)
    assert "w.pth does not fit" in msg and "0.weight: checkpoint (3, 4) vs model (5, 4)" in msg
    assert "missing in checkpoint (2)" in msg and "3.weight" in msg


def test_ddp_weights_load_without_their_module_prefix():
    src = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    load_model_weights(src, {"module." + k: v for k, v in src.state_dict().items()}, source="ddp.pth")


# ----------------------------------------------------------------------------- DDP via torchrun

def test_torchrun_two_cpu_processes(repo_root, tiny_data, tiny_config, tiny_overrides, short_run, tmp_path):
    out = str(tmp_path / "ddp")
    opts = tiny_overrides(tiny_data, out, *short_run, "SOLVER.IMS_PER_BATCH", "8")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "global_model",
           "train", "--config", tiny_config, "--no-progress", *opts]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=repo_root)
    res = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "(2 process(es))" in open(os.path.join(out, "log.txt")).read()
    epochs = load_config(tiny_config, opts).SOLVER.MAX_EPOCHS
    assert load_checkpoint(os.path.join(out, "model_final.pth"))["epoch"] == epochs
