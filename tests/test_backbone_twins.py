"""pretrainedmodels' SE networks and their timm ``legacy_*`` twins: the same network from either library,
ImageNet weights from whichever cache holds them."""
import sys

import pytest
import torch

from global_model.modeling.backbones import BackboneError, build_backbone
from global_model.modeling.pretrainedmodels_zoo import TIMM_TWINS


@pytest.fixture
def no_library(monkeypatch):
    """pretrainedmodels cannot be imported (as on an install where it broke)."""
    monkeypatch.setitem(sys.modules, "pretrainedmodels", None)


def _random_state(body):
    torch.manual_seed(0)
    return {k: (torch.randn_like(v) * 0.05 + (1.0 if "running_var" in k else 0.0)).abs()
            if "running_var" in k else (torch.randn_like(v) * 0.05 if v.is_floating_point() else v)
            for k, v in body.state_dict().items()}


def test_pretrainedmodels_name_and_its_timm_twin_are_the_same_network():
    ours, channels = build_backbone("pretrainedmodels:se_resnext50_32x4d")
    twin, twin_channels = build_backbone(f"timm:{TIMM_TWINS['se_resnext50_32x4d']}")
    a, b = ours.state_dict(), twin.state_dict()
    assert channels == twin_channels == 2048
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    state = _random_state(ours.body)
    ours.body.load_state_dict(state)
    twin.body.load_state_dict(state)
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), twin.eval()(x), atol=1e-5)


def test_without_the_library_the_twin_builds_with_the_same_keys(no_library):
    twin, _ = build_backbone("se_resnext50_32x4d")  # unprefixed: resolved to the pretrainedmodels source
    assert twin.name == "pretrainedmodels:se_resnext50_32x4d" and twin.mode == "forward_features"
    reference, _ = build_backbone("timm:legacy_seresnext50_32x4d")
    assert list(twin.state_dict()) == list(reference.state_dict())
    with pytest.raises(BackboneError, match="unknown backbone 'pretrainedmodels:bninception'"):
        build_backbone("pretrainedmodels:bninception")  # other names need the library itself


@pytest.mark.parametrize("library", [True, False], ids=["with-pretrainedmodels", "without"])
def test_imagenet_weights_come_from_the_twins_cache(empty_caches, request, library):
    """Only timm's file is cached (its own name): it fills the network whichever library built it."""
    if not library:
        request.getfixturevalue("no_library")
    body = build_backbone("timm:legacy_seresnext50_32x4d")[0].body
    state = _random_state(body)
    state.update({"last_linear.weight": torch.zeros(1000, 2048), "last_linear.bias": torch.zeros(1000)})
    checkpoints = empty_caches / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(state, checkpoints / "legacy_se_resnext50_32x4d-f3651bad.pth")
    model, _ = build_backbone("se_resnext50_32x4d", pretrained=True, last_stride=2)
    own = model.body.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items() if k in own) and "last_linear.weight" not in own


def test_offline_without_either_cache_names_both(empty_caches):
    with pytest.raises(BackboneError) as err:
        build_backbone("se_resnext50_32x4d", pretrained=True)
    message = str(err.value)
    assert "se_resnext50_32x4d-a260b3a4.pth" in message and "legacy_se_resnext50_32x4d-f3651bad.pth" in message
    assert "MODEL.PRETRAIN_PATH" in message
