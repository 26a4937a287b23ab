"""Backbone factory: name resolution, source registry, feature maps, last stride, and every way of getting weights."""
import sys
import time

import pytest
import torch
from torch import nn

import global_model.modeling
from global_model.config import get_cfg
from global_model.modeling import build_model
from global_model.modeling.backbones import (BACKBONE_SOURCES, IBN, BackboneError, BackboneSource, build_backbone,
                                             remove_last_downsample, resnet_stages, resolve_name)
from post_processing.errors import ReidError


@pytest.mark.parametrize("name, expected", [
    ("resnet18", ("timm", "resnet18")),  # unprefixed: timm first
    ("se_resnet152", ("pretrainedmodels", "se_resnet152")),  # not in timm: pretrainedmodels
    ("resnet101_ibn_a", ("ibn", "resnet101_ibn_a")),
    ("torchvision:resnet18", ("torchvision", "resnet18")),
    ("pretrainedmodels:resnet18", ("pretrainedmodels", "resnet18")),
    ("timm:resnet50.a1_in1k", ("timm", "resnet50.a1_in1k")),
])
def test_resolve_name_prefixes_and_order(name, expected):
    assert resolve_name(name) == expected


@pytest.mark.parametrize("name", ["seresnext101_32x4d", "se_resnet152", "densenet161", "dpn107", "hrnet_w48",
                                  "senet154", "resnet152", "resnet101_ibn_a"])
def test_competition_backbones_are_known(name):
    resolve_name(name)  # registry lookup only: these nets are too big to build in a test


@pytest.mark.parametrize("name, message", [
    ("resnet18x", r"unknown backbone 'resnet18x'.*not found in any of timm, pretrainedmodels, torchvision, ibn"
                  r".*close matches:.*:resnet18\b"),
    ("keras:resnet18", r"unknown library prefix 'keras:' "
                       r"\(expected one of timm:, pretrainedmodels:, torchvision:, ibn:\)"),
    ("torchvision:resnet18_ibn_a", r"not found in library 'torchvision'.*torchvision:resnet18"),
    ("ibn:resnet18x", r"not found in library 'ibn'; close matches: ibn:resnet18_ibn_a"),  # no other source's names
])
def test_unknown_name_lists_close_matches(name, message):
    with pytest.raises(BackboneError, match=message):
        resolve_name(name)


# ----------------------------------------------------------------------------- a source from outside
class TinyNet(nn.Module):
    """Two strided convolutions: a stand-in for a local network such as OSNet."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.last = nn.Conv2d(8, 16, 3, stride=2, padding=1)

    def forward_features(self, x):
        return self.last(torch.relu(self.stem(x)))


class DummySource(BackboneSource):
    order = 50

    def names(self):
        return ["tiny", "tinier"]

    def build(self, arch, pretrained):
        if pretrained:
            raise BackboneError(f"dummy:{arch} has no ImageNet weights")
        return TinyNet(), "forward_features"


@pytest.fixture
def dummy_source():
    BACKBONE_SOURCES.register("dummy", DummySource())
    yield
    BACKBONE_SOURCES.unregister("dummy")


def test_a_registered_source_builds_a_model(dummy_source):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE, cfg.MODEL.PRETRAINED = "dummy:tiny", False
    model = build_model(cfg, num_classes=5)
    assert isinstance(model.backbone.body, TinyNet) and model.backbone.name == "dummy:tiny"
    assert model.backbone(torch.zeros(2, 3, 32, 16)).shape == (2, 16, 16, 8)  # last stride 1: 32x16 / 2
    assert model.train()(torch.zeros(2, 3, 32, 16))["logits"][0].shape == (2, 5)


def test_a_registered_source_is_searched_after_the_libraries(dummy_source):
    assert resolve_name("tinier") == ("dummy", "tinier")
    assert resolve_name("resnet18") == ("timm", "resnet18")
    with pytest.raises(BackboneError, match=r"not found in library 'dummy'; close matches: dummy:tiny"):
        resolve_name("dummy:tinyy")


def test_a_taken_source_name_is_refused(dummy_source):
    with pytest.raises(ReidError, match="backbone source 'dummy' is registered twice"):
        BACKBONE_SOURCES.register("dummy", DummySource())
    with pytest.raises(ReidError, match="backbone source 'timm' is registered twice"):
        BACKBONE_SOURCES.register("timm", DummySource())


def test_a_new_source_module_is_found_by_its_prefix(tmp_path, monkeypatch):
    """``global_model/modeling/<source>.py`` is imported when MODEL.BACKBONE first names ``<source>:``."""
    (tmp_path / "localnet.py").write_text(
        "from global_model.modeling.backbones import BACKBONE_SOURCES, BackboneSource\n"
        "class LocalNet(BackboneSource):\n"
        "    def names(self):\n"
        "        return ['osnet_tiny']\n"
        "BACKBONE_SOURCES.register('localnet', LocalNet())\n")
    monkeypatch.setattr(global_model.modeling, "__path__", [*global_model.modeling.__path__, str(tmp_path)])
    try:
        assert resolve_name("localnet:osnet_tiny") == ("localnet", "osnet_tiny")
    finally:
        BACKBONE_SOURCES.unregister("localnet")
        sys.modules.pop("global_model.modeling.localnet", None)


@pytest.mark.parametrize("name, channels", [("timm:test_resnet", 96), ("torchvision:resnet18", 512),
                                            ("pretrainedmodels:resnet18", 512), ("ibn:resnet18_ibn_a", 512)])
def test_feature_map_and_channels(name, channels):
    model, c = build_backbone(name, last_stride=2)
    assert c == channels
    assert model(torch.randn(2, 3, 64, 32)).shape == (2, channels, 2, 1)


@pytest.mark.parametrize("name", ["timm:test_resnet", "timm:resnet10t", "torchvision:resnet18",
                                  "pretrainedmodels:resnet18", "ibn:resnet18_ibn_a"])
def test_last_stride_one_doubles_the_map(name):
    # resnet10t has an average-pool shortcut ("d" variant): it must become an identity, not shrink the map
    x = torch.randn(1, 3, 96, 64)
    small = build_backbone(name, last_stride=2)[0].eval()(x)
    large = build_backbone(name, last_stride=1)[0].eval()(x)
    assert large.shape[-2:] == (2 * small.shape[-2], 2 * small.shape[-1])


@pytest.mark.parametrize("module, message", [
    (nn.Sequential(nn.Conv2d(3, 4, 2, stride=2)), "instead of doubling"),
    (nn.Conv2d(3, 4, 3, padding=1), "no strided"),
])
def test_last_stride_refuses_what_it_cannot_double(module, message):
    with pytest.raises(BackboneError, match=message):
        remove_last_downsample(module, torch.zeros(1, 3, 32, 32))


def test_last_stride_must_be_one_or_two():
    with pytest.raises(BackboneError, match="MODEL.LAST_STRIDE must be 1 or 2"):
        build_backbone("timm:test_resnet", last_stride=3)


def test_ibn_a_layers():
    ibn = IBN(64)
    assert (ibn.IN.num_features, ibn.BN.num_features) == (32, 32)
    body = build_backbone("ibn:resnet18_ibn_a", last_stride=2)[0].body
    assert isinstance(body.layer3[1].bn1, IBN) and not isinstance(body.layer4[0].bn1, IBN)


def test_resnet_stages_split_and_refuse_non_resnets():
    body = build_backbone("timm:test_resnet", last_stride=2)[0].body
    stem, layers = resnet_stages(body)
    x = torch.randn(1, 3, 64, 64)
    y = stem(x)
    for layer in layers:
        y = layer(y)
    assert torch.allclose(y, body.forward_features(x))
    with pytest.raises(BackboneError, match="not ResNet-like"):
        resnet_stages(nn.Sequential(nn.Conv2d(3, 3, 1)))


# ----------------------------------------------------------------------------- weights
@pytest.mark.parametrize("name, cache", [("timm:test_resnet", "hf"), ("torchvision:resnet18", "torch"),
                                         ("pretrainedmodels:resnet18", "torch"), ("ibn:resnet18_ibn_a", "torch")])
def test_offline_without_cache_fails_fast_and_says_how_to_fix(empty_caches, name, cache):
    start = time.monotonic()
    with pytest.raises(BackboneError) as err:
        build_backbone(name, pretrained=True)
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert "MODEL.PRETRAIN_PATH" in message and str(empty_caches / cache) in message


def test_offline_timm_fails_fast_with_hf_offline_only(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE alone (no mocked network) must stop timm's minute-long download retries."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    start = time.monotonic()
    with pytest.raises(BackboneError, match="cannot be reached"):
        build_backbone("timm:test_resnet", pretrained=True)
    assert time.monotonic() - start < 10


def _params_equal(module: nn.Module, state: dict) -> bool:
    own = module.state_dict()
    return all(torch.equal(own[k], v) for k, v in state.items() if k in own)


def test_timm_weights_from_the_hf_cache_without_network(empty_caches):
    import timm
    from safetensors.torch import save_file

    state = timm.create_model("test_resnet").state_dict()  # random stand-in for the published weights
    snapshot = empty_caches / "hf" / "models--timm--test_resnet.r160_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    save_file(state, str(snapshot / "model.safetensors"))
    model, _ = build_backbone("timm:test_resnet", pretrained=True)
    assert _params_equal(model.body, state) and "layer1.0.conv1.weight" in model.body.state_dict()


@pytest.mark.parametrize("name, filename", [("torchvision:resnet18", "resnet18-f37072fd.pth"),
                                            ("pretrainedmodels:resnet18", "resnet18-5c106cde.pth"),
                                            ("ibn:resnet18_ibn_a", "resnet18_ibn_a-2f571257.pth")])
def test_torch_hub_cached_weights_without_network(empty_caches, name, filename):
    reference = build_backbone(name, last_stride=2)[0].body
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in reference.state_dict().items()}
    state.update({"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})  # the published files' head
    checkpoints = empty_caches / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(state, checkpoints / filename)
    model, _ = build_backbone(name, pretrained=True)
    assert _params_equal(model.body, {k: v for k, v in state.items() if not k.startswith("fc.")})


def test_corrupt_cached_file_is_reported(empty_caches):
    checkpoints = empty_caches / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "resnet18-f37072fd.pth").write_text("truncated download")
    with pytest.raises(BackboneError, match=r"loading ImageNet weights for backbone 'torchvision:resnet18'.*"
                                            r"MODEL.PRETRAIN_PATH"):
        build_backbone("torchvision:resnet18", pretrained=True)


def test_pretrain_path_loads_a_saved_state_dict(tmp_path, empty_caches):
    source = build_backbone("timm:test_resnet", last_stride=2)[0].body
    wrapped = {"state_dict": {"module." + k: v for k, v in source.state_dict().items()},
               "epoch": 3}
    wrapped["state_dict"]["module.fc.weight"] = torch.zeros(10, 96)  # a head: ignored, not an error
    path = tmp_path / "weights.pth"
    torch.save(wrapped, path)
    model, _ = build_backbone("timm:test_resnet", pretrained=True, pretrain_path=str(path))
    assert _params_equal(model.body, source.state_dict())
    fresh = build_backbone("timm:test_resnet")[0].body
    assert not _params_equal(fresh, source.state_dict())


def _other_net(path):
    torch.save(build_backbone("timm:resnet10t", last_stride=2)[0].body.state_dict(), path)


@pytest.mark.parametrize("make, message", [
    (_other_net, r"do not fit backbone 'timm:test_resnet'.*(missing|another shape)"),
    (lambda path: None, r"'.*weights.pth' does not exist"),
    (lambda path: path.write_text("not a checkpoint"), "not a readable weight file"),
])
def test_pretrain_path_mismatches_are_reported(tmp_path, make, message):
    path = tmp_path / "weights.pth"
    make(path)
    with pytest.raises(BackboneError, match=message):
        build_backbone("timm:test_resnet", pretrain_path=str(path))
