"""RVSL: priors on hand-made images, gradient isolation of every term, real streams, the stage schedule,
exact resume, and a tiny run that lowers the cycle reconstruction error."""
import os

import cv2
import numpy as np
import pytest
import torch

from global_model.config import load_config_string
from global_model.data.datasets import load_dataset
from global_model.data.fog import add_fog, ground_plane_depth, sample_fog
from global_model.engine.checkpoint import load_checkpoint
from global_model.engine.trainer import build_trainer
from global_model.rvsl.losses import generator_outputs
from global_model.rvsl.priors import (colinear_loss, dark_channel, dark_channel_loss, estimate_airlight, midc_loss,
                                      total_variation_loss)
from global_model.rvsl.sampler import ShuffleSampler
from global_model.rvsl.schedule import RVSLSchedule
from global_model.rvsl.trainer import DISCRIMINATORS, RVSLTrainer

SIZE = 32
# (domain folder, split, kind, ids, images per id)
LAYOUT = [("FVRID_syn", "train", "both", range(1, 9), 4), ("FVRID_syn", "query", "both", range(9, 11), 1),
          ("FVRID_syn", "gallery", "both", range(9, 11), 2), ("FVRID_clear", "train", "clear", range(201, 205), 3),
          ("FVRID_clear", "query", "clear", [205], 1), ("FVRID_clear", "gallery", "clear", [205], 2),
          ("FVRID_real", "train", "foggy", range(101, 105), 3), ("FVRID_real", "query", "foggy", [105], 1),
          ("FVRID_real", "gallery", "foggy", [105], 2)]


def _vehicle(rng, pid):
    base = np.random.default_rng(pid).uniform(30, 220, (4, 4, 3))
    img = cv2.resize(base, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 6, (SIZE, SIZE, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("fvrid"))
    rng = np.random.default_rng(0)
    depth = ground_plane_depth(SIZE, SIZE)
    for domain, split, kind, ids, per in LAYOUT:
        for pid in ids:
            for k in range(per):
                name = f"{pid:05d}_c{k + (2 if split == 'gallery' else 1):03d}_{k:06d}_0.png"
                clear = _vehicle(rng, pid)
                imgs = {"clear": clear, "foggy": add_fog(clear, depth, *sample_fog(rng))}
                for kk in (("clear", "foggy") if kind == "both" else (kind,)):
                    folder = os.path.join(root, "fvrid", domain, f"{split}_{kk}")
                    os.makedirs(folder, exist_ok=True)
                    assert cv2.imwrite(os.path.join(folder, name), cv2.cvtColor(imgs[kk], cv2.COLOR_RGB2BGR))
    return root


def rvsl_cfg(root, out, stage=1, epochs=2, iters=3, stages="[1, 2, 3]", stage_epochs="[]", val_ids=2, eval_period=None):
    return load_config_string(f"""
MODEL: {{META_ARCH: rvsl, BACKBONE: resnet10t, LAST_STRIDE: 2,
        RVSL: {{STAGE: {stage}, STAGES: {stages}, STAGE_EPOCHS: {stage_epochs}, WIDTH: 8, DISC_WIDTH: 8,
                REAL_BATCH: 4, DC_PATCH: 5, VAL_IDS: {val_ids}, VAL_MAX: 6, VIS_NUM: 2, POOL_SIZE: 3,
                REAL_CLEAR: 'fvrid(split=clear)=fvrid', REAL_HAZY: 'fvrid(split=real)=fvrid'}}}}
INPUT: {{SIZE_TRAIN: [{SIZE}, {SIZE}], SIZE_TEST: [{SIZE}, {SIZE}], PADDING: 2, RE_PROB: 0.0}}
DATASETS: {{ROOT: '{root}', TRAIN: ['fvrid(split=syn)=fvrid'], TEST: 'fvrid(split=syn)=fvrid'}}
DATALOADER: {{NUM_WORKERS: 0, NUM_INSTANCE: 2}}
SOLVER: {{OPTIMIZER: Adam, BASE_LR: 0.003, IMS_PER_BATCH: 4, MAX_EPOCHS: {epochs}, ITERS_PER_EPOCH: {iters},
          SCHED: cosine, EVAL_PERIOD: {epochs if eval_period is None else eval_period}, CHECKPOINT_PERIOD: 1, LOG_PERIOD: 100, AMP: 'off'}}
TEST: {{IMS_PER_BATCH: 16, AMP: 'off'}}
OUTPUT_DIR: '{out}'
""")


# ----------------------------------------------------------------------------- priors on hand-made images
def _scene():
    g = torch.Generator().manual_seed(0)
    clear = torch.rand(2, 3, 16, 16, generator=g) * 0.7 + 0.05  # darker than the airlight, as scenes are
    airlight = torch.tensor([0.80, 0.85, 0.90])
    t = torch.rand(2, 1, 16, 16, generator=g) * 0.6 + 0.3
    return clear, airlight, clear * t + airlight.view(1, 3, 1, 1) * (1 - t)


def test_haze_raises_the_dark_channel_and_the_corrected_loss_prefers_the_clear_image():
    clear, _, hazy = _scene()
    assert bool((dark_channel(hazy, 3) >= dark_channel(clear, 3)).all())
    assert dark_channel(hazy, 3).mean() > dark_channel(clear, 3).mean() + 0.1
    assert dark_channel_loss(clear, 3) < dark_channel_loss(hazy, 3)  # pushed towards 0, not towards 1
    assert total_variation_loss(torch.full((1, 3, 8, 8), 0.5)) == 0


def test_midc_is_zero_for_real_haze_and_positive_where_haze_darkens():
    clear, _, hazy = _scene()
    assert float(midc_loss(clear, hazy)) == 0.0
    assert float(midc_loss(clear, clear * 0.5)) > 0.05


def test_colinear_relation_is_zero_on_the_haze_line_and_not_off_it():
    clear, airlight, hazy = _scene()
    a = airlight.expand(2, 3)
    assert float(colinear_loss(clear, hazy, a)) < 1e-10
    assert float(colinear_loss(clear, hazy.flip(1), a)) > 0.05  # channels swapped: off the haze line


def test_airlight_comes_from_the_brightest_eroded_dark_channel_of_every_image():
    clear, airlight, hazy = _scene()
    sky = hazy.clone()
    sky[:, :, :4] = airlight.view(1, 3, 1, 1)  # a band of pure airlight (t = 0)
    assert torch.allclose(estimate_airlight(sky, top=0.05, erode=3), airlight.expand(2, 3), atol=1e-6)
    clear_sky = clear.clone()
    clear_sky[:, :, :4] = airlight.view(1, 3, 1, 1)
    assert float(colinear_loss(clear_sky, sky, top=0.05)) < 1e-10  # estimated airlight, whole batch


# ----------------------------------------------------------------------------- gradients
GROUPS = ("clear_encoder", "hazy_encoder", "trunk", "classifier", "to_clear", "to_hazy") + DISCRIMINATORS


def _modules(trainer):
    m = trainer.model
    return {"clear_encoder": m.clear_encoder, "hazy_encoder": m.hazy_encoder, "trunk": m.trunk,
            "classifier": m.classifier, **{k: trainer.aux[k] for k in ("to_clear", "to_hazy") + DISCRIMINATORS}}


def _batch(trainer):
    return trainer.to_device(next(iter(trainer.train_loader)))


def _reached(trainer, term):
    mods = _modules(trainer)
    for mod in mods.values():
        mod.zero_grad(set_to_none=True)
    term.backward(retain_graph=True)
    return {name for name, mod in mods.items()
            if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in mod.parameters())}


ENC = {"clear_encoder", "hazy_encoder"}
EXPECTED = {
    1: {"reid_clear": {"clear_encoder", "trunk", "classifier"}, "reid_hazy": {"hazy_encoder", "trunk", "classifier"},
        "trans": ENC | {"to_clear", "to_hazy"}, "feat": ENC | {"trunk"}, "adv": ENC | {"to_clear", "to_hazy"}},
    2: {"real_feat": ENC | {"trunk", "to_hazy"}, "cycle": ENC | {"to_clear", "to_hazy"},
        "real_adv": ENC | {"to_clear", "to_hazy"}, "midc": {"clear_encoder", "to_hazy"},
        "cr": {"clear_encoder", "to_hazy"}},
    3: {"real_feat": ENC | {"trunk", "to_clear"}, "cycle": ENC | {"to_clear", "to_hazy"},
        "real_adv": ENC | {"to_clear", "to_hazy"}, "dc": {"hazy_encoder", "to_clear"},
        "tv": {"hazy_encoder", "to_clear"}, "cr": {"hazy_encoder", "to_clear"}},
}


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_each_term_reaches_exactly_its_modules(root, tmp_path, stage):
    trainer = RVSLTrainer(rvsl_cfg(root, str(tmp_path), stage=stage), progress=False)
    batch = _batch(trainer)
    for name in DISCRIMINATORS:
        trainer.aux[name].requires_grad_(False)  # as in the generator step
    cfg = trainer.cfg
    out = generator_outputs(trainer.model, trainer.aux, batch, stage, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)
    terms, _ = trainer.loss_fn.terms(out, batch["pids"])
    assert set(terms) == set(trainer.loss_fn.weights)
    for name, expected in {**EXPECTED[1], **EXPECTED[stage]}.items():
        if stage > 1 and name == "adv":
            continue
        assert _reached(trainer, terms[name]) == expected, name


def _snapshot(trainer, names):
    mods = _modules(trainer)
    return {n: [p.detach().clone() for p in mods[n].parameters()] for n in names}


def _changed(before, trainer):
    mods = _modules(trainer)
    return {n for n, ps in before.items() if any(not torch.equal(a, b) for a, b in zip(ps, mods[n].parameters()))}


@pytest.mark.parametrize("stage", [1, 3])
def test_a_discriminator_step_leaves_the_generators_unchanged_and_vice_versa(root, tmp_path, stage):
    trainer = RVSLTrainer(rvsl_cfg(root, str(tmp_path), stage=stage), progress=False)
    batch = _batch(trainer)
    generators = [g for g in GROUPS if g not in DISCRIMINATORS]
    before = _snapshot(trainer, GROUPS)
    out, _, _ = trainer.generator_step(batch)
    assert _changed(before, trainer) == set(generators)
    before = _snapshot(trainer, GROUPS)
    parts = trainer.discriminator_step(out)
    assert _changed(before, trainer) == set(DISCRIMINATORS) and set(parts) == set(DISCRIMINATORS)


# ----------------------------------------------------------------------------- real streams
def test_real_batches_ignore_identities_and_are_redrawn_every_pass_and_epoch():
    sampler = ShuffleSampler(12, 4, seed=3)
    sampler.set_epoch(1)
    first, second = [i for i, _ in sampler], [i for i, _ in sampler]
    assert sorted(first) == sorted(second) == list(range(12)) and first != second
    sampler.set_epoch(2)
    other = [i for i, _ in sampler]
    sampler.set_epoch(1)
    assert [i for i, _ in sampler] == first and other != first


def test_the_real_stream_is_reiterated_each_epoch(root, tmp_path):
    trainer = RVSLTrainer(rvsl_cfg(root, str(tmp_path), stage=2, iters=4), progress=False)
    loader, sampler = trainer.train_loader.loaders["real_clear"]
    assert isinstance(sampler, ShuffleSampler)
    seen = []
    trainer.run_step = lambda batch: seen.append(tuple(batch["real_clear"]["paths"])) or {"loss": 0.0}
    trainer.train_epoch(1)
    passes_1 = sampler.passes
    trainer.train_epoch(2)
    # 12 real images in batches of 4: each 4-step epoch runs out once and starts a new, re-shuffled pass
    assert passes_1 == 2 and sampler.passes == 2 and len(seen) == 8
    assert seen[:3] != seen[4:7] and seen[3] not in seen[:3]


# ----------------------------------------------------------------------------- schedule, resume, a tiny run
def test_a_tiny_run_lowers_the_cycle_reconstruction_error(root, tmp_path):
    trainer = RVSLTrainer(rvsl_cfg(root, str(tmp_path), stage=2, epochs=3, iters=4, eval_period=0), progress=False)
    cycle = []
    epoch_fn = trainer.train_epoch
    trainer.train_epoch = lambda epoch: cycle.append(epoch_fn(epoch)["cycle"]) or {}
    trainer.train()
    assert cycle[-1] < 0.8 * cycle[0], cycle


@pytest.fixture(scope="module")
def schedule_run(root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("rvsl"))
    cfg = rvsl_cfg(root, out, iters=2, stage_epochs="[1, 2, 1]", eval_period=1)
    schedule = build_trainer(cfg, progress=False)
    assert isinstance(schedule, RVSLSchedule)
    final = schedule.train()
    return {"cfg": cfg, "out": out, "schedule": schedule, "final": final}


def test_stages_chain_through_checkpoints(schedule_run):
    out, schedule = schedule_run["out"], schedule_run["schedule"]
    for k in (1, 2, 3):
        assert os.path.isfile(os.path.join(out, f"stage{k}", "model_final.pth"))
    cfg2 = schedule.stage_config(1)
    assert cfg2.MODEL.RVSL.INIT == os.path.join(out, "stage1", "best.pth") and cfg2.SOLVER.MAX_EPOCHS == 2
    started = RVSLTrainer(cfg2, progress=False)
    handoff = load_checkpoint(cfg2.MODEL.RVSL.INIT)
    for k, v in started.model.state_dict().items():
        assert torch.equal(v, handoff["model"][k]), k  # classifier carried too
    assert torch.equal(started.aux["to_clear"].state_dict()["to_rgb.weight"], handoff["aux"]["to_clear"]["to_rgb.weight"])
    final, last = load_checkpoint(os.path.join(out, "model_final.pth")), load_checkpoint(
        os.path.join(out, "stage3", "model_final.pth"))
    assert all(torch.equal(final["model"][k], last["model"][k]) for k in last["model"])
    assert os.listdir(os.path.join(out, "stage3", "defog_vis"))
    assert np.isfinite(schedule_run["final"]["psnr_restored"]) and "mAP" in schedule_run["final"]


def test_resume_skips_finished_stages(schedule_run):
    again = RVSLSchedule(schedule_run["cfg"], resume="auto", progress=False)
    assert again.first is None


def test_the_run_summary_names_the_last_stage_and_the_copied_checkpoints(schedule_run):
    from global_model.commands.train import summary_lines

    out, summary = schedule_run["out"], schedule_run["schedule"].summary()
    assert summary["best_epoch"] == 1 and summary["best_map"] is not None
    assert summary["checkpoints"] == {"final": os.path.join(out, "model_final.pth"),
                                      "best": os.path.join(out, "best.pth"),
                                      "last": os.path.join(out, "stage3", "last.pth")}
    assert len(summary_lines(summary, 1)) == 5


def _weights(trainer):
    return {**{f"m.{k}": v for k, v in trainer.model.state_dict().items()},
            **{f"{n}.{k}": v for n, mod in trainer.aux.items() for k, v in mod.state_dict().items()}}


def test_resume_continues_exactly(root, tmp_path):
    """Translators, discriminators, their optimizers, the replay pools and the real stream resume:
    1 epoch + resume = 2 epochs straight."""
    straight = RVSLTrainer(rvsl_cfg(root, str(tmp_path / "a"), stage=3, iters=2, eval_period=0), progress=False)
    straight.train()
    cfg = rvsl_cfg(root, str(tmp_path / "b"), stage=3, iters=2, eval_period=0)
    first = RVSLTrainer(cfg, progress=False)
    first.train_epoch(1)
    first.epoch = 1
    first.after_epoch(1)
    resumed = RVSLTrainer(cfg, resume="auto", progress=False)
    assert resumed.epoch == 1 and len(resumed.pools["disc_clear"].images) == 3
    resumed.train()
    expected, got = _weights(straight), _weights(resumed)
    assert expected.keys() == got.keys()
    for k in expected:
        assert torch.equal(expected[k], got[k]), k


# ----------------------------------------------------------------------------- inference
def test_extraction_follows_test_rvsl_path(schedule_run):
    """Each path, also after extract's BN folding (which must not fold a shared trunk's BN twice)."""
    from global_model.engine.extractor import load_model_from_checkpoint, prepare_for_inference

    final = os.path.join(schedule_run["out"], "model_final.pth")
    images = torch.randn(2, 3, SIZE, SIZE)
    feats = {}
    for path in ("hazy", "clear", "mean"):
        model, _ = load_model_from_checkpoint(final, opts=["TEST.RVSL_PATH", path, "MODEL.DEVICE", "cpu"])
        with torch.no_grad():
            feats[path] = model(images)
            assert torch.allclose(prepare_for_inference(model)(images), feats[path], atol=1e-4), path
    assert not torch.allclose(feats["hazy"], feats["clear"])
    assert torch.allclose(feats["mean"], 0.5 * (feats["hazy"] + feats["clear"]), atol=1e-5)


def test_defog_restores_with_the_hazy_to_clear_translator(schedule_run, tmp_path, capsys):
    from global_model.cli import main as cli

    final = os.path.join(schedule_run["out"], "model_final.pth")
    src = os.path.join(schedule_run["cfg"].DATASETS.ROOT, "fvrid", "FVRID_real", "gallery_foggy")
    out = tmp_path / "restored"
    assert cli(["defog", "--checkpoint", final, "--src", src, "--out", str(out), "--no-progress"]) == 0
    written = sorted(os.listdir(out))
    assert written == sorted(os.listdir(src))
    assert cv2.imread(str(out / written[0])).shape == (SIZE, SIZE, 3)
    assert cli(["defog", "--checkpoint", final, "--src", src, "--out", str(out), "--image", "decoded",
                "--no-progress"]) == 2
    assert "restored" in capsys.readouterr().err


def test_the_fvrid_loader_reads_the_real_clear_domain(root):
    splits = load_dataset("fvrid", os.path.join(root, "fvrid"), split="clear")
    assert len(splits.train) == 4 * 3 and len(splits.query) == 1 and len(splits.gallery) == 2
    assert all(r.clear_path is None and r.attrs["domain"] == "clear" and "FVRID_clear" in r.path for r in splits.train)


def test_synth_writes_an_fvrid_clear_view_and_leaves_every_other_file_as_it_was(tmp_path, monkeypatch):
    from global_model.data.synth import generate, writer
    from global_model.data.synth.fvrid_clear import CLEAR_PID_BASE

    def files(root):
        return {os.path.relpath(os.path.join(d, n), root): open(os.path.join(d, n), "rb").read()
                for d, _, names in os.walk(root) for n in names if n != "summary.json"}

    args = dict(seed=1, ids=6, cameras=3, real_ids=2, size=(48, 64))
    generate(str(tmp_path / "with"), **args)
    monkeypatch.setattr(writer, "clear_view_jobs", lambda p: ())
    generate(str(tmp_path / "without"), **args)
    with_view, without = files(tmp_path / "with"), files(tmp_path / "without")
    clear = {k for k in with_view if k.startswith(os.path.join("fvrid", "FVRID_clear"))}
    assert clear and {k: v for k, v in with_view.items() if k not in clear} == without
    splits = load_dataset("fvrid", str(tmp_path / "with" / "fvrid"), split="clear")
    real = load_dataset("fvrid", str(tmp_path / "with" / "fvrid"), split="real")
    assert all(r.pid > CLEAR_PID_BASE for r in splits.train + splits.query + splits.gallery)
    assert not {r.pid for r in splits.train} & {r.pid for r in real.train + real.query}
