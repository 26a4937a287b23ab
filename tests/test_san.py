"""SAN: decoder shapes, decoder-triplet masks, target alignment, gradient paths, synthetic targets, a tiny run."""
import os
import re
import shutil
from collections import defaultdict

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from global_model.config import load_config
from global_model.data.records import ImageRecord
from global_model.data.transforms import TrainTransform

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SAN_TINY = os.path.join(REPO, "global_model", "san", "configs", "san_tiny.yml")
SMALL = ("MODEL.SAN.WIDTHS", "[32, 16, 16, 8, 8]")


@pytest.fixture(scope="module")
def san_data(tmp_path_factory):
    """A synthetic benchmark with SAN targets: 12 ids (6 train) on 3 cameras, 48x64."""
    from global_model.data.synth import generate

    root = str(tmp_path_factory.mktemp("san_data"))
    generate(root, seed=0, ids=12, size=(48, 64), cameras=3, real_ids=0)
    return root


def _train_labels(root):
    text = open(os.path.join(root, "train_label.xml"), encoding="latin-1").read()
    return re.findall(r'imageName="(\w+)\.jpg" vehicleID="(\d+)" cameraID="c(\d+)"', text)


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_decoder_output_shapes_for_several_input_sizes(backbone):
    from global_model.modeling import build_model
    from global_model.san.model import build_decoder

    cfg = load_config(SAN_TINY, ["MODEL.BACKBONE", backbone, *SMALL])
    model = build_model(cfg, 4)
    decoder = build_decoder(cfg, model)
    for h, w in [(48, 64), (64, 32), (70, 50)]:
        x = torch.randn(2, 3, h, w)
        out = model.train()(x)
        decoded, maps = decoder(out["san_maps"], (h, w))
        assert decoded.shape == (2, 3, h, w)
        assert float(decoded.detach().min()) >= 0 and float(decoded.detach().max()) <= 1
        assert [m.shape[1] for m in maps] == [16, 16, 8, 8]
        if h % 16 == 0 and w % 16 == 0:  # the four up-blocks step from 1/8 to full size
            assert [tuple(m.shape[-2:]) for m in maps] == [(h // 8, w // 8), (h // 4, w // 4), (h // 2, w // 2), (h, w)]
        feat = model.eval()(x)  # inference: the encoder's feature only
        assert isinstance(feat, torch.Tensor) and feat.shape == (2, model.feat_dim)


def test_a_stride_2_last_stage_is_refused():
    from global_model.modeling import build_model
    from global_model.modeling.backbones import BackboneError

    with pytest.raises(BackboneError, match="LAST_STRIDE 1"):
        build_model(load_config(SAN_TINY, ["MODEL.LAST_STRIDE", "2"]), 4)


def test_decoder_triplet_masks_match_a_hand_computation():
    from global_model.modeling.losses import pair_masks
    from global_model.san.losses import hardest_pairs

    pos, neg = pair_masks(torch.tensor([7, 7, 3, 3, 5, 5]))  # K = 2
    assert pos.int().tolist() == [[0, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0],
                                  [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0]]
    assert neg.int().tolist() == [[0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [1, 1, 0, 0, 1, 1],
                                  [1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0]]
    pids = torch.tensor([2, 2, 2, 2, 9, 9, 9, 9])  # K = 4
    pos, neg = pair_masks(pids)
    block = [[0, 1, 1, 1], [1, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]]
    assert pos.int().tolist() == [r + [0] * 4 for r in block] + [[0] * 4 + r for r in block]
    assert neg.int().tolist() == [[0] * 4 + [1] * 4] * 4 + [[1] * 4 + [0] * 4] * 4
    # Images on a line at these positions: distance |a - b|.
    x = torch.tensor([0.0, 1.0, 2.0, 6.0, 7.0, 9.0, 10.0, 20.0])
    ap, an, valid = hardest_pairs((x[:, None] - x[None, :]).abs(), pids)
    assert ap.tolist() == [3, 3, 3, 0, 7, 7, 7, 4]  # farthest same-id image
    assert an.tolist() == [4, 4, 4, 4, 3, 3, 3, 3]  # nearest other-id image
    assert bool(valid.all())


def test_decoder_triplet_value_and_skipped_anchors():
    from global_model.san.losses import decoder_triplet, map_distances

    maps = torch.tensor([0.0, 1.0, 3.0, 3.5]).view(4, 1, 1, 1)
    assert torch.allclose(map_distances(maps), (maps.view(4, 1) - maps.view(1, 4)) ** 2)
    # anchor 0: ap d(0,1) = 1, an d(0,2) = 9 -> 0; anchor 1: 1 vs d(1,2) = 4 -> 0;
    # anchor 2: ap d(2,3) = 0.25, an d(2,1) = 4 -> 0; anchor 3: 0.25 vs d(3,1) = 6.25 -> 0; with margin 5:
    expected = (max(0, 1 - 9 + 5) + max(0, 1 - 4 + 5) + max(0, .25 - 4 + 5) + max(0, .25 - 6.25 + 5)) / 4
    assert float(decoder_triplet(maps, torch.tensor([0, 0, 1, 1]), margin=5.0)) == pytest.approx(expected)
    # an id seen once has no positive: only the K=2 pair's anchors count
    got = float(decoder_triplet(maps, torch.tensor([0, 0, 1, 2]), margin=5.0))
    assert got == pytest.approx((max(0, 1 - 9 + 5) + max(0, 1 - 4 + 5)) / 2)


def test_target_and_input_stay_aligned_under_flip_and_crop(tmp_path):
    from global_model.san.data import SANDataset, align_target, san_collate

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 24, 3), dtype=np.uint8)
    plain = TrainTransform((32, 24), padding=4, flip_prob=0.5, re_prob=0.0, cj_prob=0.0, mean=(0, 0, 0), std=(1, 1, 1))
    noisy = TrainTransform((32, 24), padding=4, flip_prob=0.5, re_prob=1.0, cj_prob=1.0, mean=(0, 0, 0), std=(1, 1, 1))
    outputs = set()
    for seed in range(24):
        x = plain(img, np.random.default_rng(seed))
        target = align_target(noisy, img, np.random.default_rng(seed))  # jitter and erasing leave it alone
        assert np.allclose(target, align_target(plain, img, np.random.default_rng(seed)))
        assert np.allclose(x, target, atol=1e-6)
        outputs.add(target.tobytes())
    assert len(outputs) > 12  # crops and flips did vary
    path = str(tmp_path / "a.png")
    cv2.imwrite(path, img[..., ::-1])
    data = SANDataset([ImageRecord(path, 0, 1, attrs={"san_target": path})] * 2, plain)
    batch = san_collate([data[(0, 5)], data[(1, 6)]])
    assert torch.allclose(batch["images"], batch["target"], atol=1e-6) and batch["target"].shape == (2, 3, 32, 24)


def test_gradients_of_each_term_reach_encoder_and_decoder():
    from global_model.modeling import build_model
    from global_model.san.losses import decoder_triplet
    from global_model.san.model import build_decoder

    torch.manual_seed(0)
    cfg = load_config(SAN_TINY, list(SMALL))
    model = build_model(cfg, 2).train()
    decoder = build_decoder(cfg, model)
    x, pids = torch.randn(4, 3, 32, 32), torch.tensor([0, 0, 1, 1])
    target = torch.rand(4, 3, 32, 32)
    terms = {"rec": lambda d, maps: F.l1_loss(d, target),
             "dtri": lambda d, maps: sum(decoder_triplet(m, pids, margin=100.0) for m in maps)}
    for name, term in terms.items():
        model.zero_grad(set_to_none=True)
        decoder.zero_grad(set_to_none=True)
        decoded, maps = decoder(model(x)["san_maps"], (32, 32))
        term(decoded, maps).backward()
        reached = {"stem": [p for n, p in model.backbone.named_parameters() if n.startswith("body.conv1")],
                   **{f"layer{i}": list(getattr(model.backbone.body, f"layer{i}").parameters()) for i in range(1, 5)},
                   "decoder up1": list(decoder.up1.parameters()), "decoder embed1": list(decoder.embed1.parameters())}
        for part, params in reached.items():
            assert sum(float(p.grad.abs().sum()) for p in params if p.grad is not None) > 0, (name, part)


def test_synthetic_targets_depend_on_the_identity_only(san_data):
    by_pid = defaultdict(dict)
    for name, pid, cam in _train_labels(san_data):
        with open(os.path.join(san_data, "san_targets", "image_train", name + ".png"), "rb") as f:
            by_pid[pid].setdefault(cam, set()).add(f.read())
    multi = [p for p, cams in by_pid.items() if len(cams) > 1]
    assert multi and len(by_pid) == 6
    for cams in by_pid.values():  # one target per identity, whatever the camera and frame
        assert len(set().union(*cams.values())) == 1
    targets = [next(iter(set().union(*cams.values()))) for cams in by_pid.values()]
    assert len(set(targets)) == len(targets)  # and another one for every other identity
    img = cv2.imread(os.path.join(san_data, "san_targets", "image_train", _train_labels(san_data)[0][0] + ".png"))
    assert img.shape == (48, 64, 3)


def test_targets_are_found_with_any_extension_and_missing_ones_are_named(san_data, tmp_path):
    from global_model.data.datasets import DatasetError
    from global_model.san.targets import attach_targets

    cfg = load_config(SAN_TINY, ["DATASETS.ROOT", san_data])
    recs = [ImageRecord(os.path.join(san_data, "image_train", n + ".jpg"), 0, 1) for n, _, _ in _train_labels(san_data)]
    found = attach_targets(cfg, recs)
    assert all(r.attrs["san_target"].endswith(".png") and os.path.isfile(r.attrs["san_target"]) for r in found)
    other = tmp_path / "targets" / "image_train"
    other.mkdir(parents=True)
    cv2.imwrite(str(other / (_train_labels(san_data)[0][0] + ".jpg")), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match=f"{len(recs) - 1} of {len(recs)} training images have no target"):
        elsewhere = ["DATASETS.ROOT", san_data, "MODEL.SAN.TARGET_DIR", str(tmp_path / "targets")]
        attach_targets(load_config(SAN_TINY, elsewhere), recs)
    rec = attach_targets(load_config(SAN_TINY, ["MODEL.SAN.TARGET", "reconstruct"]), recs[:1])
    assert rec[0].attrs["san_target"] == recs[0].path


def test_a_tiny_run_lowers_the_reconstruction_loss_extracts_the_encoder_and_writes_panels(san_data, tmp_path):
    from global_model.cli import main
    from global_model.engine.extractor import load_model_from_checkpoint
    from global_model.engine.trainer import build_trainer

    # The full objective (published weights), the decoder on its own Adam.
    opts = ["DATASETS.ROOT", san_data, "OUTPUT_DIR", str(tmp_path), *SMALL, "INPUT.SIZE_TRAIN", "[32, 32]",
            "INPUT.SIZE_TEST", "[32, 32]", "SOLVER.IMS_PER_BATCH", "8", "SOLVER.ITERS_PER_EPOCH", "4",
            "SOLVER.MAX_EPOCHS", "5", "SOLVER.WARMUP_EPOCHS", "0", "SOLVER.BASE_LR", "0.01", "SOLVER.AMP", "off",
            "MODEL.SAN.DECODER_LR", "0.01", "DATALOADER.NUM_WORKERS", "0", "SOLVER.EVAL_PERIOD", "0",
            "SOLVER.CHECKPOINT_PERIOD", "0"]
    trainer = build_trainer(load_config(SAN_TINY, opts), progress=False)
    assert "decoder" in trainer.optimizers
    rec = [trainer.train_epoch(e)["rec"] for e in range(1, 6)]  # mean L1 of each epoch's 4 steps
    assert rec[-1] < 0.85 * rec[0], rec
    trainer.epoch = 5
    trainer.train()  # writes model_final.pth
    ckpt = os.path.join(str(tmp_path), "model_final.pth")
    model, _ = load_model_from_checkpoint(ckpt)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, model.feat_dim)  # the encoder's feature only
    names = [n for n, _, _ in _train_labels(san_data)[:2]]
    src = tmp_path / "src"
    src.mkdir()
    for n in names:
        shutil.copy(os.path.join(san_data, "image_train", n + ".jpg"), src)
    targets = os.path.join(san_data, "san_targets", "image_train")
    assert main(["san-panels", "--checkpoint", ckpt, "--src", str(src), "--out", str(tmp_path / "panels"),
                 "--targets", targets, "--no-progress"]) == 0
    panel = cv2.imread(str(tmp_path / "panels" / (names[0] + ".png")))
    assert panel.shape == (32, 96, 3)
    expected = cv2.resize(cv2.imread(os.path.join(targets, names[0] + ".png")), (32, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(panel[:, 32:64].astype(int) - expected).max() <= 1


def test_the_published_recipe_config_loads_with_amsgrad():
    from global_model.engine.solver import build_optimizer

    cfg = load_config(os.path.join(REPO, "global_model", "san", "configs", "san_r50_person.yml"), [])
    m, s = cfg.MODEL, cfg.SOLVER
    assert (m.BACKBONE, m.LAST_STRIDE, list(cfg.INPUT.SIZE_TRAIN)) == ("torchvision:resnet50", 1, [256, 128])
    assert (s.IMS_PER_BATCH // cfg.DATALOADER.NUM_INSTANCE, cfg.DATALOADER.NUM_INSTANCE) == (16, 4)
    assert (s.MAX_EPOCHS, s.WARMUP_EPOCHS, s.GAMMA, s.STEPS[:2]) == (300, 20, 0.5, [40, 80])
    assert (m.SAN.REC_WEIGHT, m.SAN.TR_WEIGHT, m.SAN.TR_MARGIN, cfg.LOSS.LABEL_SMOOTH) == (1, 1, 0.3, 0.1)
    opt = build_optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))]}], cfg)
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["amsgrad"] and opt.defaults["lr"] == 0.0008
