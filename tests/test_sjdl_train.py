"""A tiny SJDL run on a generated FVRID tree: restoration improves, resume is exact, extract and defog work."""
import os

import cv2
import numpy as np
import pytest
import torch

from global_model.cli import main as cli
from global_model.config import load_config_string
from global_model.data.fog import add_fog, ground_plane_depth, sample_fog
from global_model.engine.checkpoint import load_checkpoint, save_checkpoint
from global_model.engine.trainer import build_trainer
from post_processing.features import load_features

SIZE = 32


def _vehicle(rng, pid):
    """A smooth colour field per identity plus a little per-image texture, H×W×3 uint8."""
    base = np.random.default_rng(pid).uniform(30, 220, (4, 4, 3))
    img = cv2.resize(base, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 6, (SIZE, SIZE, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


# (domain, split, ids, images per id) of the tiny FVRID tree
LAYOUT = [("FVRID_syn", "train", range(1, 7), 4), ("FVRID_syn", "query", range(7, 10), 1),
          ("FVRID_syn", "gallery", range(7, 10), 2), ("FVRID_real", "train", range(101, 105), 4),
          ("FVRID_real", "query", range(105, 107), 1), ("FVRID_real", "gallery", range(105, 107), 2)]


def layout(domain, split):
    """``(ids, images per id)`` of one domain's split in :data:`LAYOUT`."""
    return next((ids, per) for d, s, ids, per in LAYOUT if (d, s) == (domain, split))


def build_tiny_fvrid(root):
    rng = np.random.default_rng(0)
    depth = ground_plane_depth(SIZE, SIZE)
    for domain, split, ids, per in LAYOUT:
        for pid in ids:
            for k in range(per):
                cam = k + (2 if split == "gallery" else 1)
                name = f"{pid:05d}_c{cam:03d}_{k:06d}_0.png"
                clear = _vehicle(rng, pid)
                beta, airlight = sample_fog(rng)
                kinds = {"foggy": add_fog(clear, depth, beta, airlight)}
                if domain == "FVRID_syn":
                    kinds["clear"] = clear
                for kind, img in kinds.items():
                    folder = os.path.join(root, "fvrid", domain, f"{split}_{kind}")
                    os.makedirs(folder, exist_ok=True)
                    assert cv2.imwrite(os.path.join(folder, name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


def sjdl_cfg(root, out, epochs=3, iters=8, eval_period=None):
    text = f"""
MODEL: {{META_ARCH: sjdl, BACKBONE: resnet10t, LAST_STRIDE: 2,
        SJDL: {{WIDTH: 8, REAL_PERIOD: 2, DC_PATCH: 5, VAL_PAIRS: 'fvrid(split=syn)=fvrid', VAL_MAX: 6, VIS_NUM: 2}}}}
INPUT: {{SIZE_TRAIN: [{SIZE}, {SIZE}], SIZE_TEST: [{SIZE}, {SIZE}], PADDING: 2, RE_PROB: 0.0}}
DATASETS: {{ROOT: '{root}', TRAIN: ['fvrid(split=both)=fvrid'], TEST: 'fvrid(split=syn)=fvrid'}}
DATALOADER: {{NUM_WORKERS: 0, NUM_INSTANCE: 4}}
SOLVER: {{OPTIMIZER: Adam, BASE_LR: 0.01, IMS_PER_BATCH: 8, MAX_EPOCHS: {epochs}, ITERS_PER_EPOCH: {iters},
          SCHED: cosine, EVAL_PERIOD: {epochs if eval_period is None else eval_period}, CHECKPOINT_PERIOD: 1, LOG_PERIOD: 100, AMP: 'off'}}
TEST: {{IMS_PER_BATCH: 16, AMP: 'off'}}
OUTPUT_DIR: '{out}'
"""
    return load_config_string(text)


def model_weights(trainer):
    return {**{f"m.{k}": v for k, v in trainer.model.state_dict().items()},
            **{f"d.{k}": v for k, v in trainer.aux["decoder"].state_dict().items()}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = build_tiny_fvrid(str(tmp_path_factory.mktemp("data")))
    out = str(tmp_path_factory.mktemp("run"))
    trainer = build_trainer(sjdl_cfg(root, out), progress=False)
    before = trainer.restoration_metrics("before")
    rest = []
    epoch_fn = trainer.train_epoch

    def spy(epoch):
        means = epoch_fn(epoch)
        rest.append(means["rest"])
        return means

    trainer.train_epoch = spy
    final = trainer.train()
    return {"root": root, "out": out, "trainer": trainer, "before": before, "final": final, "rest": rest}


def test_the_trainer_reads_both_fvrid_domains(run):
    data = run["trainer"].data
    (syn_ids, _), (real_ids, real_per) = layout("FVRID_syn", "train"), layout("FVRID_real", "train")
    assert len(data.streams["real"].records) == len(real_ids) * real_per
    assert data.main_ids == len(syn_ids) and data.num_classes == len(syn_ids) + len(real_ids)


def test_tiny_run_lowers_restoration_loss(run):
    rest = run["rest"]
    assert rest[-1] < 0.8 * rest[0], rest


def test_tiny_run_raises_psnr_and_ssim(run):
    before, final = run["before"], run["final"]
    assert final["psnr_decoded"] > before["psnr_decoded"] + 1.5, (before, final)
    assert final["ssim_decoded"] > before["ssim_decoded"]


@pytest.mark.parametrize("key", ["dark", "tv", "entropy", "fft", "real_ce", "mAP"])
def test_tiny_run_reports_finite_metrics(run, key):
    assert np.isfinite(run["final"][key]), key


def test_tiny_run_writes_a_panel_before_training_and_after_each_epoch(run):
    epochs = run["trainer"].cfg.SOLVER.MAX_EPOCHS
    panels = sorted(os.listdir(os.path.join(run["out"], "defog_vis")))
    assert len(panels) == 1 + epochs and panels[0].startswith("before_")
    assert panels[-1].startswith(f"epoch_{epochs:03d}_")
    assert cv2.imread(os.path.join(run["out"], "defog_vis", panels[-1])).shape == (SIZE, 4 * SIZE, 3)


def test_resume_continues_exactly(run, tmp_path):
    """Decoder (aux/decoder), optimizer and real-fog stream resume: 1 epoch + resume = 2 epochs straight."""
    straight = build_trainer(sjdl_cfg(run["root"], str(tmp_path / "a"), epochs=2, iters=2, eval_period=0), progress=False)
    straight.train()
    cfg = sjdl_cfg(run["root"], str(tmp_path / "b"), epochs=2, iters=2, eval_period=0)
    first = build_trainer(cfg, progress=False)
    first.train_epoch(1)
    first.epoch = 1
    first.after_epoch(1)
    assert set(load_checkpoint(os.path.join(cfg.OUTPUT_DIR, "last.pth"))["aux"]) == {"decoder"}
    resumed = build_trainer(cfg, resume="auto", progress=False)
    assert resumed.epoch == 1
    resumed.train()
    expected, got = model_weights(straight), model_weights(resumed)
    assert expected.keys() == got.keys() and any(k.startswith("d.") for k in got)
    for k in expected:
        assert torch.equal(expected[k], got[k]), k


def test_extract_runs_the_encoder_of_an_sjdl_checkpoint(run, tmp_path):
    final = os.path.join(run["out"], "model_final.pth")
    assert cli(["extract", "--checkpoint", final, "--out-dir", str(tmp_path), "--name", "sjdl_t", "--no-progress"]) == 0
    fs = load_features(str(tmp_path / "query_sjdl_t.pkl"))
    ids, per = layout("FVRID_syn", "query")  # DATASETS.TEST is the syn split
    queries = len(ids) * per
    assert len(fs.names) == queries and fs.feats.shape == (queries, run["trainer"].model.feat_dim)


REAL_FOGGY = ("fvrid", "FVRID_real", "gallery_foggy")


@pytest.mark.parametrize("kind", ["decoded", "enhanced"])
def test_defog_writes_same_size_images(run, tmp_path, kind):
    final = os.path.join(run["out"], "model_final.pth")
    src = os.path.join(run["root"], *REAL_FOGGY)
    out = tmp_path / "defogged"
    assert cli(["defog", "--checkpoint", final, "--src", src, "--out", str(out), "--image", "both",
                "--no-progress"]) == 0
    written = sorted(os.listdir(out / kind))
    assert written == sorted(os.listdir(src))
    assert cv2.imread(str(out / kind / written[0])).shape == (SIZE, SIZE, 3)


def test_defog_refuses_a_checkpoint_without_a_decoder(run, tmp_path, capsys):
    final = os.path.join(run["out"], "model_final.pth")
    no_decoder = {k: v for k, v in load_checkpoint(final).items() if k != "aux"}
    bad = str(tmp_path / "plain.pth")
    save_checkpoint(bad, no_decoder)
    src = os.path.join(run["root"], *REAL_FOGGY)
    assert cli(["defog", "--checkpoint", bad, "--src", src, "--out", str(tmp_path / "x"), "--no-progress"]) == 1
    assert "no 'aux/decoder' entry" in capsys.readouterr().err
