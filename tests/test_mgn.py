"""MGN: branch structure and shapes, stripe pooling, test-vector selection, loss and extraction via global_model."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mgn_model  # registers "mgn"
from global_model.cli import main
from global_model.config import get_cfg
from global_model.modeling import build_model
from global_model.modeling.losses import build_loss
from mgn_model.model import MGN, parse_branches
from post_processing.features import load_features

WIDTH = 16


def mgn_cfg(**mgn):
    cfg = get_cfg("mgn")
    cfg.MODEL.BACKBONE = "timm:test_resnet"
    cfg.MODEL.MGN.REDUCTION_DIM = WIDTH
    for key, value in mgn.items():
        setattr(cfg.MODEL.MGN, key, value)
    return cfg


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(mgn_cfg(), num_classes=6)


def test_build_model_dispatches_to_mgn(model):
    assert isinstance(model, MGN)
    assert model.vector_names == ["g", "h2", "h2.0", "h2.1", "h3", "h3.0", "h3.1", "h3.2", "v2", "v2.0", "v2.1"]
    assert model.feat_dim == 11 * WIDTH


def test_forward_shapes_for_every_branch(model):
    model.train()
    out = model(torch.randn(4, 3, 64, 64))
    assert len(out["logits"]) == 11 and all(t.shape == (4, 6) for t in out["logits"])
    assert len(out["triplet_feats"]) == 4 and all(t.shape == (4, WIDTH) for t in out["triplet_feats"])
    assert [t.shape for t in out["center_feats"]] == [(4, model.feat_dim)]
    model.eval()
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, model.feat_dim)


def test_global_branch_keeps_stride_two_and_stripe_branches_stride_one(model):
    shared = model.trunk(torch.zeros(1, 3, 64, 64))
    sizes = {name: tuple(branch(shared).shape[-2:]) for name, branch in model.branches.items()}
    assert sizes == {"g": (2, 2), "h2": (4, 4), "h3": (4, 4), "v2": (4, 4)}


def test_branches_own_their_layers(model):
    params = [{id(p) for p in branch.parameters()} for branch in model.branches.values()]
    assert all(a.isdisjoint(b) for i, a in enumerate(params) for b in params[i + 1:])
    assert {id(p) for p in model.trunk.parameters()}.isdisjoint(set().union(*params))


def test_stripes_pool_the_right_regions(model):
    """h3.1 is the middle third of the rows, v2.1 the right half of the columns (max pooling)."""
    model.eval()
    images = torch.randn(2, 3, 96, 64)  # maps 6×4: three 2-row stripes, two 2-column halves
    vectors = model.vectors(images)
    shared = model.trunk(images)
    h3 = model.branches["h3"](shared)
    v2 = model.branches["v2"](shared)
    middle = h3[:, :, 2:4].amax(dim=(2, 3), keepdim=True)
    right = v2[:, :, :, 2:].amax(dim=(2, 3), keepdim=True)
    assert torch.allclose(vectors["h3.1"], model.reductions["h3_1"](middle).flatten(1), atol=1e-5)
    assert torch.allclose(vectors["v2.1"], model.reductions["v2_1"](right).flatten(1), atol=1e-5)
    assert torch.allclose(vectors["g"], model.reductions["g"](F.adaptive_max_pool2d(
        model.branches["g"](shared), 1)).flatten(1), atol=1e-5)


def test_test_vectors_select_and_order_the_feature():
    torch.manual_seed(0)
    model = build_model(mgn_cfg(BRANCHES=["g", "h2"], TEST_VECTORS=["h2.1", "g"], POOLING="avg"), 3).eval()
    assert model.feat_dim == 2 * WIDTH
    images = torch.randn(2, 3, 64, 64)
    vectors = model.vectors(images)
    assert torch.equal(model(images), torch.cat([vectors["h2.1"], vectors["g"]], 1))


@pytest.mark.parametrize("mgn, message", [
    ({"BRANCHES": ["g", "x2"]}, "entry 'x2' is not 'g', 'hN' or 'vN'"),
    ({"BRANCHES": ["h2", "h2"]}, "distinct branches"),
    ({"BRANCHES": []}, "distinct branches"),
    ({"TEST_VECTORS": ["h4.0"]}, r"\['h4.0'\] are not vectors.*available: g, h2, h2.0"),
    ({"POOLING": "gem"}, "MODEL.MGN.POOLING must be one of max, avg"),
    ({"REDUCTION_DIM": 0}, "MODEL.MGN.REDUCTION_DIM"),
])
def test_config_errors(mgn, message):
    with pytest.raises(ValueError, match=message):
        build_model(mgn_cfg(**mgn), 3)


def test_non_resnet_backbones_are_refused():
    cfg = mgn_cfg()
    cfg.MODEL.BACKBONE = "timm:test_convnext"
    with pytest.raises(ValueError, match="not ResNet-like"):
        build_model(cfg, 3)


def test_parse_branches():
    assert [(b.name, b.axis, b.parts) for b in parse_branches(["g", "h12", "v2"])] == [
        ("g", "", 0), ("h12", "h", 12), ("v2", "v", 2)]


def test_loss_decreases_on_a_tiny_batch():
    """The shared build_loss (CE over all 11 classifiers + triplet on the 4 global vectors) trains MGN."""
    torch.manual_seed(0)
    cfg = mgn_cfg()
    cfg.LOSS.TRIPLET_MARGIN = 1.2
    model = build_model(cfg, 4)
    loss_fn = build_loss(cfg, 4, model.feat_dim)
    images = torch.randn(8, 3, 64, 64)
    batch = {"pids": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        total, parts = loss_fn(model(images), batch)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(total.item())
    assert set(parts) == {"ce", "triplet"}
    assert losses[-1] < 0.7 * losses[0]


@pytest.fixture(scope="module")
def mgn_run(tmp_path_factory, fake_trees):
    """`mgn_model train` (global_model's trainer) then `python -m mgn_model extract` (its extractor) on a fake
    AIC20 tree: the run folder, the finished extract process and the features folder."""
    tmp = tmp_path_factory.mktemp("mgn_run")
    root = fake_trees.build_aic20(str(tmp / "aic"), ground_truth=True)
    run = tmp / "run"
    config = os.path.join(os.path.dirname(mgn_model.__file__), "configs", "mgn_tiny.yml")
    opts = ["MODEL.BACKBONE", "timm:test_resnet", "MODEL.MGN.REDUCTION_DIM", str(WIDTH), "DATASETS.ROOT", root,
            "INPUT.SIZE_TRAIN", "[64, 64]", "INPUT.SIZE_TEST", "[64, 64]", "DATALOADER.NUM_WORKERS", "0",
            "DATALOADER.NUM_INSTANCE", "2", "SOLVER.IMS_PER_BATCH", "6", "SOLVER.MAX_EPOCHS", "2",
            "SOLVER.EVAL_PERIOD", "2", "TEST.IMS_PER_BATCH", "4", "OUTPUT_DIR", str(run)]
    assert main(["train", "--config", config, "--no-progress", *opts], prog="mgn_model") == 0
    out = tmp / "features"
    done = subprocess.run([sys.executable, "-m", "mgn_model", "extract", "--checkpoint", str(run / "model_final.pth"),
                           "--out-dir", str(out), "--name", "mgn", "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    return {"run": run, "extract": done, "features": out}


def test_mgn_model_train_writes_the_final_weights(mgn_run):
    assert (mgn_run["run"] / "model_final.pth").is_file()


@pytest.fixture
def mgn_features(mgn_run, fake_trees):
    """``{split: (expected names, features)}`` written by `mgn_model extract`."""
    assert mgn_run["extract"].returncode == 0, mgn_run["extract"].stderr
    return {split: (names, load_features(str(mgn_run["features"] / f"{split}_mgn.pkl")))
            for split, names in (("query", fake_trees.AIC_QUERY), ("gallery", fake_trees.AIC_TEST))}


@pytest.mark.parametrize("split", ["query", "gallery"])
def test_mgn_model_extract_keeps_the_dataset_order(mgn_features, split):
    names, fs = mgn_features[split]
    assert list(fs.names) == names


@pytest.mark.parametrize("split", ["query", "gallery"])
def test_mgn_features_have_the_documented_dimension(mgn_features, split):
    """The config's documented dimension: its 4 branch-global vectors (TEST_VECTORS) × REDUCTION_DIM, float32."""
    names, fs = mgn_features[split]
    assert fs.feats.shape == (len(names), 4 * WIDTH) and fs.feats.dtype == np.float32


@pytest.mark.parametrize("split", ["query", "gallery"])
def test_mgn_features_are_unit_norm(mgn_features, split):
    _, fs = mgn_features[split]
    assert np.allclose(np.linalg.norm(fs.feats, axis=1), 1.0, atol=1e-4)


def test_competition_config_builds_resnet152_mgn():
    """The AIC20 config loads and builds (on the meta device: shapes only, no memory) to the documented size."""
    from global_model.config import load_config

    config = os.path.join(os.path.dirname(mgn_model.__file__), "configs", "mgn_r152_aic20.yml")
    cfg = load_config(config, ["MODEL.PRETRAINED", "False"])
    assert cfg.INPUT.SIZE_TRAIN == [384, 384] and cfg.MODEL.BACKBONE == "resnet152"
    with torch.device("meta"):
        model = build_model(cfg, num_classes=666)
    assert model.feat_dim == 11 * 512
    assert model.trunk(torch.empty(1, 3, 384, 384, device="meta")).shape == (1, 1024, 24, 24)
