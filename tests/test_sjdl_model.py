"""SJDL model: the encoder keeps the global-model contract; the decoder rebuilds [0, 1] images at input size."""
import os
import subprocess
import sys

import pytest
import torch

from global_model.config import get_cfg
from global_model.engine.extractor import prepare_for_inference
from global_model.modeling import build_model
from global_model.modeling.backbones import BackboneError
from global_model.sjdl.model import DefogDecoder, build_defog_decoder, defog, to_unit_range


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def sjdl_cfg(backbone="resnet10t"):
    cfg = get_cfg("sjdl")
    cfg.MODEL.BACKBONE, cfg.MODEL.SJDL.WIDTH = backbone, 8
    return cfg


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(sjdl_cfg(), 7)


def test_encoder_contract_and_no_decoder_in_the_model(model):
    images = torch.randn(4, 3, 48, 64)
    model.train()
    out = model(images)
    assert len(out["logits"]) == 1 and out["logits"][0].shape == (4, 7)
    stem, layer1 = out["defog_maps"]
    assert stem.shape == (4, model.stem_channels, 12, 16) and layer1.shape == (4, model.layer1_channels, 12, 16)
    with torch.no_grad():
        direct = model.defog_maps(images)  # the stages up to layer1, same batch statistics
    assert torch.allclose(direct[0], stem) and torch.allclose(direct[1], layer1)
    model.eval()
    with torch.no_grad():
        feat = model(images)
    assert isinstance(feat, torch.Tensor) and feat.shape == (4, model.feat_dim)
    folded = prepare_for_inference(model, channels_last=False)  # what `extract` runs: BN folded by torch.fx
    assert isinstance(folded, torch.fx.GraphModule)
    with torch.no_grad():
        assert torch.allclose(folded(images), feat, atol=1e-4)
    # extraction builds exactly this module: no decoder weights in it
    assert not any(isinstance(m, DefogDecoder) for m in model.modules())
    assert not any(k.startswith("decoder") for k in model.state_dict())


@pytest.mark.parametrize("size", [(48, 64), (50, 66)])
def test_decoder_output_matches_input_size_and_range(model, size):
    cfg = sjdl_cfg()
    decoder = build_defog_decoder(cfg, model).eval()
    images = torch.randn(2, 3, *size) * 3
    with torch.no_grad():
        decoded, enhanced = defog(model.eval(), decoder, images)
    for img in (decoded, enhanced):
        assert img.shape == (2, 3, *size)
        assert img.min() >= 0 and img.max() <= 1


def test_to_unit_range_inverts_the_input_normalisation():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    rgb = torch.rand(2, 3, 5, 5)
    normalised = (rgb - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(to_unit_range(normalised, mean, std), rgb, atol=1e-6)


def test_non_resnet_backbone_is_refused_with_the_reason():
    cfg = sjdl_cfg("torchvision:squeezenet1_1")
    cfg.MODEL.LAST_STRIDE = 2
    with pytest.raises(BackboneError, match="META_ARCH sjdl needs a ResNet-like backbone .*squeezenet1_1"):
        build_model(cfg, 3)


def test_the_family_registers_itself_when_discovered():
    """A fresh process finds the sjdl architecture, trainer and config node through MODEL.META_ARCH alone."""
    code = ("from global_model.config import get_cfg\n"
            "from global_model.engine.trainer import TRAINERS\n"
            "from global_model.modeling import ARCHS\n"
            "cfg = get_cfg('sjdl')\n"
            "assert 'sjdl' in ARCHS and TRAINERS.find('sjdl').__name__ == 'SJDLTrainer', (ARCHS, TRAINERS)\n"
            "assert cfg.MODEL.SJDL.WIDTH == 64 and cfg.MODEL.SJDL.REAL_PERIOD == 5\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
