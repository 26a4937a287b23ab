"""ONNX export (parity with PyTorch checked before writing), ``extract --backend onnx`` and ``actmap``."""
import os

import numpy as np
import pytest
import torch

from global_model.cli import main


def _random_checkpoint(path, cfg, num_classes=5, seed=0):
    """A checkpoint in the trainer's format of an untrained model whose BatchNorm statistics are random
    (so folding them into the convolutions is exercised, not the identity)."""
    from global_model.engine.checkpoint import save_checkpoint
    from global_model.modeling import build_model

    torch.manual_seed(seed)
    model = build_model(cfg, num_classes)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
            if module.bias is not None:
                module.bias.data.normal_(0, 0.1)
    save_checkpoint(path, {"model": model.state_dict(), "cfg": cfg.dump(), "num_classes": num_classes})
    return path


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, tiny_cfg, tiny_data):
    out = tmp_path_factory.mktemp("export")
    cfg = tiny_cfg(tiny_data, str(out), "MODEL.POOLING", "gem", "DATALOADER.NUM_WORKERS", "0")
    return _random_checkpoint(str(out / "model.pth"), cfg)


def test_export_matches_pytorch_and_stores_the_config(tiny_ckpt, tmp_path):
    from global_model.engine.export import PARITY_TOLERANCE, export_onnx
    from global_model.engine.onnx_backend import OnnxModel

    out = str(tmp_path / "model.onnx")
    result = export_onnx(tiny_ckpt, out, dynamic_batch=True)
    assert 0 <= result.max_diff <= PARITY_TOLERANCE and result.images == 4
    model = OnnxModel(out)
    assert model.batch is None and model.size_hw == (48, 64)
    cfg = model.config()
    assert cfg.MODEL.POOLING == "gem" and int(model.metadata["feat_dim"]) == result.feat_dim == 512
    assert len(model.metadata["fingerprint"]) == 16 and model.metadata["meta_arch"] == "baseline"
    # BatchNorm folded: only the BNNeck (after pooling, no convolution before it) remains a BN node.
    import onnx

    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert ops.count("BatchNormalization") == 1 and ops.count("Conv") == 20


def test_export_writes_nothing_when_parity_fails(tiny_ckpt, tmp_path):
    from global_model.engine.export import ExportError, export_onnx

    out = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match="differs from the PyTorch model by .* not written"):
        export_onnx(tiny_ckpt, str(out), tolerance=-1.0)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_mgn_exports(tmp_path, tiny_cfg, repo_root):
    """MGN with every part vector (adaptive pooling to 2×1, 3×1 and 1×2 grids of a 6×6 map) exports and
    matches PyTorch too."""
    from global_model.config import load_config
    from global_model.engine.export import export_onnx

    cfg = load_config(os.path.join(repo_root, "mgn_model", "configs", "mgn_tiny.yml"),
                      ["INPUT.SIZE_TEST", "[96,96]", "MODEL.MGN.TEST_VECTORS", "[]"])
    ckpt = _random_checkpoint(str(tmp_path / "mgn.pth"), cfg)
    result = export_onnx(ckpt, str(tmp_path / "mgn.onnx"), count=2)
    assert result.max_diff <= 1e-4 and result.feat_dim == 128 * (1 + 3 + 4 + 3)


def test_export_command_then_onnx_extraction_equals_torch(tiny_ckpt, tiny_data, tmp_path, capsys):
    from post_processing.features import load_features

    onnx_file = str(tmp_path / "model.onnx")
    assert main(["export", "--checkpoint", tiny_ckpt, "--out", onnx_file, "--images",
                 os.path.join(tiny_data, "image_query")]) == 0
    out = capsys.readouterr().out
    assert f"wrote {onnx_file}" in out and "parity: max |onnx - torch|" in out
    common = ["--out-dir", str(tmp_path / "f"), "--split", "query", "--no-progress"]
    # float32 on both sides (TEST.AMP auto would run PyTorch in bf16 on a CPU that has it).
    assert main(["extract", "--checkpoint", tiny_ckpt, "--name", "pt", *common, "TEST.AMP", "off"]) == 0
    # A fixed batch of 1: the extractor feeds it one image (and its mirror) at a time.
    assert main(["extract", "--backend", "onnx", "--onnx", onnx_file, "--name", "ox", *common]) == 0
    pt = load_features(str(tmp_path / "f" / "query_pt.pkl"))
    ox = load_features(str(tmp_path / "f" / "query_ox.pkl"))
    assert pt.names == ox.names and len(pt.names) > 10
    assert np.abs(pt.feats - ox.feats).max() <= 1e-4
    assert ox.meta["checkpoint"] == onnx_file


@pytest.mark.parametrize("extra", [["--backend", "onnx"], ["--backend", "onnx", "--onnx", "m.onnx",
                                                             "--checkpoint", "c.pth"], []],
                         ids=["onnx-without-file", "onnx-with-checkpoint", "torch-without-checkpoint"])
def test_extract_backend_usage_errors(extra, tmp_path, capsys):
    assert main(["extract", *extra, "--out-dir", str(tmp_path), "--name", "x"]) == 2
    assert "--backend" in capsys.readouterr().err


def test_actmap_writes_one_panel_per_image(tiny_ckpt, tmp_path, capsys):
    import cv2

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "a.png", "sub/b.jpg"):
        cv2.imwrite(str(src / name), rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    out = tmp_path / "maps"
    assert main(["actmap", "--checkpoint", tiny_ckpt, "--src", str(src), "--out", str(out), "--no-progress"]) == 0
    assert "wrote 3 activation map(s)" in capsys.readouterr().out
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["a.jpg.png", "a.png.png", "sub/b.png"]
    panel = cv2.imread(str(out / "sub" / "b.png"))
    assert panel.shape == (48, 3 * 64 + 2 * 8, 3)
    heat = panel[:, 64 + 8: 2 * 64 + 8]
    assert heat.std() > 0  # a map, not a flat colour


def test_actmap_refuses_a_model_without_a_backbone_and_an_empty_folder(tmp_path):
    from global_model.engine.actmap import ActmapError, activation_maps, folder_images

    with pytest.raises(ActmapError, match="need a model with a 'backbone' feature map; Conv2d has none"):
        activation_maps(torch.nn.Conv2d(3, 4, 1), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ActmapError, match="no image files"):
        folder_images(str(tmp_path))
