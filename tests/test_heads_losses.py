"""Pooling, the baseline model's output contract, the arch registry and every loss term."""
import math

import pytest
import torch
import torch.nn.functional as F

from global_model.config import get_cfg
from global_model.modeling import ARCHS, build_model, register_arch
from global_model.modeling.backbones import BackboneError
from global_model.modeling.heads import GeM, build_pooling
from global_model.modeling.losses import (CenterLoss, CircleLoss, ReIDLoss, TripletLoss, build_loss,
                                          LossConfigError, hard_example_mining, loss_optimizers,
                                          pairwise_euclidean)
from post_processing.registry import RegistryError, UnknownNameError


def model_cfg(**model):
    """The default config on the tiny timm test backbone with ``MODEL.<KEY>`` overrides."""
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = "timm:test_resnet"
    for key, value in model.items():
        setattr(cfg.MODEL, key, value)
    return cfg


def loss_cfg(**loss):
    """The default config with ``LOSS.<KEY>`` overrides given as lower-case keywords (ce_weight=0.0)."""
    cfg = get_cfg()
    for key, value in loss.items():
        cfg.LOSS[key.upper()] = value
    return cfg


# ----------------------------------------------------------------------------- pooling
def test_gem_interpolates_between_average_and_max():
    x = torch.rand(2, 3, 4, 5) + 0.1
    assert torch.allclose(GeM(p=1.0)(x), F.adaptive_avg_pool2d(x, 1), atol=1e-6)
    assert torch.allclose(GeM(p=60.0)(x), F.adaptive_max_pool2d(x, 1), rtol=0.05)
    gem = GeM(p=3.0)
    gem(x).sum().backward()
    assert gem.p.grad is not None and gem.p.grad.abs() > 0  # p is learnable


def test_pooling_errors_name_the_key():
    with pytest.raises(ValueError, match="MODEL.POOLING must be one of avg, max, gem, got 'mean'"):
        build_pooling("mean")


# ----------------------------------------------------------------------------- baseline model
@pytest.mark.parametrize("pooling, reduction, neck, test_feat", [
    ("avg", 0, "bnneck", "after_bn"), ("gem", 32, "bnneck", "before_bn"), ("max", 0, "none", "after_bn"),
    ("gem", 0, "bnneck", "after_bn"), ("avg", 32, "none", "before_bn"), ("max", 32, "bnneck", "after_bn"),
])
def test_baseline_shapes_and_test_feature(pooling, reduction, neck, test_feat):
    torch.manual_seed(0)
    model = build_model(model_cfg(POOLING=pooling, REDUCTION_DIM=reduction, NECK=neck, TEST_FEAT=test_feat), 5)
    dim = reduction or 96
    assert model.feat_dim == dim
    out = model(torch.randn(4, 3, 32, 32))
    assert [t.shape for t in out["logits"]] == [(4, 5)]
    assert [t.shape for t in out["triplet_feats"]] == [(4, dim)] == [t.shape for t in out["center_feats"]]
    model.eval()
    images = torch.randn(3, 3, 32, 32)
    feat = model(images)
    assert feat.shape == (3, dim)
    pooled = model.pool(model.backbone(images))
    pooled = (model.reduction(pooled) if reduction else pooled).flatten(1)
    expected = model.neck(pooled) if (neck == "bnneck" and test_feat == "after_bn") else pooled
    assert torch.allclose(feat, expected)


def test_bnneck_shift_is_frozen_and_classifier_has_no_bias():
    model = build_model(model_cfg(), 5)
    assert not model.neck.bias.requires_grad and model.neck.weight.requires_grad
    assert model.classifier.bias is None and model.classifier.weight.std() < 0.01


def test_last_stride_reaches_the_model():
    maps = [build_model(model_cfg(LAST_STRIDE=s), 3).backbone(torch.zeros(1, 3, 64, 64)).shape[-1] for s in (1, 2)]
    assert maps == [4, 2]


@pytest.mark.parametrize("key, value, error, message", [
    ("NECK", "bn", ValueError, "MODEL.NECK"), ("TEST_FEAT", "after", ValueError, "MODEL.TEST_FEAT"),
    ("META_ARCH", "nonexistent", UnknownNameError, "unknown architecture 'nonexistent'.*known: .*baseline")])
def test_model_config_errors(key, value, error, message):
    with pytest.raises(error, match=message):
        build_model(model_cfg(**{key: value}), 3)


def test_register_arch_dispatches_and_refuses_duplicates():
    @register_arch("unit_test_arch")
    def build(cfg, num_classes):
        return torch.nn.Linear(1, num_classes)

    try:
        assert build_model(model_cfg(META_ARCH="unit_test_arch"), 7).out_features == 7
        with pytest.raises(RegistryError, match="registered twice"):
            register_arch("unit_test_arch")(lambda cfg, n: None)
    finally:
        ARCHS.unregister("unit_test_arch")


def test_forward_intermediates_names_the_stages_of_the_forward():
    model = build_model(model_cfg(), 3).eval()
    images = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        final, maps = model.backbone.forward_intermediates(images, ("stem", "layer2"))
        assert torch.equal(final, model.backbone(images)) and list(maps) == ["stem", "layer2"]
        only = model.backbone.forward_intermediates(images, ("layer1",), intermediates_only=True)
    assert maps["stem"].shape[-2:] == only["layer1"].shape[-2:] == (16, 12)
    assert model.backbone.stage_names() == ["stem", "layer1", "layer2", "layer3", "layer4"]
    with pytest.raises(BackboneError, match="unknown stage name.*'layer5'.*known: stem, layer1"):
        model.backbone.forward_intermediates(images, ("layer5",))


def test_forward_intermediates_refuses_a_network_without_stages():
    cfg = model_cfg(BACKBONE="torchvision:squeezenet1_1", LAST_STRIDE=2)
    with pytest.raises(BackboneError, match="squeezenet1_1' has no named stages.*ResNet-like"):
        build_model(cfg, 3).backbone.forward_intermediates(torch.zeros(1, 3, 32, 32), ("stem",))


# ----------------------------------------------------------------------------- triplet
def _line(values):
    return torch.tensor(values, dtype=torch.float32)[:, None]


def test_batch_hard_mining_picks_farthest_positive_and_nearest_negative():
    feats, pids = _line([0.0, 1.0, 5.0, 2.0, 9.0]), torch.tensor([0, 0, 0, 1, 1])
    d_ap, d_an, valid = hard_example_mining(pairwise_euclidean(feats), pids)
    assert torch.allclose(d_ap, torch.tensor([5.0, 4.0, 5.0, 7.0, 7.0]), atol=1e-4)
    assert torch.allclose(d_an, torch.tensor([2.0, 1.0, 3.0, 1.0, 4.0]), atol=1e-4)
    assert valid.all()
    hinge = TripletLoss(margin=0.3)(feats, pids)
    expected = F.relu(d_ap - d_an + 0.3).mean()
    soft = TripletLoss(margin=0.0)(feats, pids)
    assert torch.isclose(hinge, expected) and torch.isclose(soft, F.softplus(d_ap - d_an).mean())
    assert not torch.isclose(hinge, soft)


def test_triplet_skips_anchors_without_positives():
    feats, pids = _line([0.0, 2.0, 1.0]), torch.tensor([0, 0, 1])  # the lone image of id 1 is no anchor
    assert torch.isclose(TripletLoss(0.3)(feats, pids), torch.tensor(2.0 - 1.0 + 0.3), atol=1e-5)
    lonely = torch.randn(3, 4, requires_grad=True)
    loss = TripletLoss(0.3)(lonely, torch.tensor([0, 1, 2]))
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(lonely.grad).all()
    with pytest.raises(ValueError, match="TRIPLET_MARGIN"):
        TripletLoss(-1.0)


# ----------------------------------------------------------------------------- cross-entropy
def test_label_smoothing_value_on_a_known_case():
    eps, logits, target = 0.1, torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])
    logp = torch.log_softmax(logits, 1)[0]
    expected = -((1 - eps + eps / 3) * logp[0] + eps / 3 * logp[1] + eps / 3 * logp[2])
    loss = ReIDLoss(loss_cfg(label_smooth=eps, triplet_weight=0.0), 3, 4)
    total, parts = loss({"logits": [logits]}, {"pids": target})
    assert math.isclose(parts["ce"], expected.item(), rel_tol=1e-6) and math.isclose(total.item(), parts["ce"])
    total2, parts2 = loss({"logits": [logits, logits]}, {"pids": target})  # one term per classifier, summed
    assert math.isclose(parts2["ce"], 2 * expected.item(), rel_tol=1e-6)


# ----------------------------------------------------------------------------- center
def test_center_loss_value_and_pull_towards_centres():
    center = CenterLoss(num_classes=2, feat_dim=2)
    with torch.no_grad():
        center.centers.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0]]))
    feats = torch.tensor([[3.0, 4.0], [10.0, 1.0]], requires_grad=True)
    pids = torch.tensor([0, 1])
    assert torch.isclose(center(feats, pids), torch.tensor((25.0 + 1.0) / 2))
    opt = torch.optim.SGD([feats], lr=0.1)
    before = center(feats, pids).item()
    for _ in range(5):
        opt.zero_grad()
        center(feats, pids).backward()
        opt.step()
    assert center(feats, pids).item() < 0.5 * before
    with pytest.raises(ValueError, match="built for 2-d features"):
        center(torch.zeros(2, 3), pids)


def test_centres_declare_their_own_optimizer_only_with_center_loss():
    assert loss_optimizers(ReIDLoss(loss_cfg(), 4, 8), get_cfg()) == {}
    cfg = loss_cfg(center_weight=5e-4, center_lr=0.25)
    loss = ReIDLoss(cfg, 4, 8)
    (name, spec), = loss_optimizers(loss, cfg).items()
    (centers,) = spec.params()
    assert name == "terms.center.centers" and centers is loss.terms["center"].centers and centers.shape == (4, 8)
    assert isinstance(spec.optimizer, torch.optim.SGD) and spec.optimizer.defaults["lr"] == 0.25
    assert spec.grad_scale == 1.0 / 5e-4 and spec.joint


# ----------------------------------------------------------------------------- circle
def test_circle_loss_decreases_when_positives_get_closer():
    torch.manual_seed(0)
    pids = torch.tensor([0, 0, 1, 1, 2, 2])
    feats = torch.randn(6, 16)
    circle = CircleLoss(margin=0.25, gamma=32.0)
    closer = feats.clone()
    closer[1::2] = 0.5 * feats[1::2] + 0.5 * feats[0::2]  # move each second image towards its partner
    assert circle(closer, pids) < circle(feats, pids)
    feats.requires_grad_(True)
    circle(feats, torch.tensor([0, 1, 2, 3, 4, 5])).backward()  # no positives at all: 0, finite gradient
    assert torch.isfinite(feats.grad).all()


# ----------------------------------------------------------------------------- combined
def test_build_loss_weights_parts_and_bf16():
    cfg = get_cfg()
    cfg.LOSS.CENTER_WEIGHT, cfg.LOSS.CIRCLE_WEIGHT, cfg.LOSS.TRIPLET_WEIGHT = 0.01, 0.5, 2.0
    loss = build_loss(cfg, num_classes=3, feat_dim=8)
    torch.manual_seed(0)
    feats = torch.randn(6, 8, requires_grad=True)
    logits = torch.randn(6, 3, requires_grad=True)
    pids = torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = {"logits": [logits.bfloat16()], "triplet_feats": [feats.bfloat16()],
                   "center_feats": [feats.bfloat16()]}
        total, parts = loss(outputs, {"pids": pids})
    assert total.dtype == torch.float32 and set(parts) == {"ce", "triplet", "center", "circle"}
    expected = parts["ce"] + 2.0 * parts["triplet"] + 0.01 * parts["center"] + 0.5 * parts["circle"]
    assert math.isclose(total.item(), expected, rel_tol=1e-5)
    total.backward()
    assert feats.grad.abs().sum() > 0 and logits.grad.abs().sum() > 0


def test_weight_zero_terms_are_skipped():
    loss = ReIDLoss(loss_cfg(triplet_weight=0.0), 3, 4)
    total, parts = loss({"logits": [torch.zeros(2, 3)]}, {"pids": torch.tensor([0, 1])})  # no triplet_feats needed
    assert set(parts) == {"ce"}


@pytest.mark.parametrize("outputs, pids, message", [
    ({"logits": [torch.zeros(2, 3)]}, torch.tensor([0, 1]), "needs the model output 'triplet_feats'"),
    ({"logits": [torch.zeros(2, 3)], "triplet_feats": [torch.zeros(2, 4)]}, torch.tensor([0, 3]),
     r"must lie in 0..2 \(num_classes=3\); got values 0..3"),
    ({"logits": [torch.zeros(2, 5)], "triplet_feats": [torch.zeros(2, 4)]}, torch.tensor([0, 1]),
     r"logits of shape \(2, 5\) do not match 2 labels × 3 classes"),
    ({"logits": [torch.zeros(2, 3)], "triplet_feats": [torch.zeros(2, 4)]}, torch.tensor([0.0, 1.0]),
     "1-D integer tensor"),
])
def test_loss_input_errors(outputs, pids, message):
    with pytest.raises(ValueError, match=message):
        ReIDLoss(loss_cfg(), 3, 4)(outputs, {"pids": pids})


@pytest.mark.parametrize("loss, message", [
    ({"ce_weight": 0.0, "triplet_weight": 0.0}, r"every loss weight \(LOSS.CE_WEIGHT, LOSS.TRIPLET_WEIGHT.*\) is 0"),
    ({"ce_weight": -1.0}, "LOSS.CE_WEIGHT must be >= 0"),
    ({"label_smooth": 1.0}, "LOSS.LABEL_SMOOTH"),
    ({"triplet_margin": -0.1}, "LOSS.TRIPLET_MARGIN"),
])
def test_loss_config_errors(loss, message):
    with pytest.raises(LossConfigError, match=message):
        ReIDLoss(loss_cfg(**loss), 3, 4)
