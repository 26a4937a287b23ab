"""SJDL terms: every unsupervised term trains the decoder, over the whole batch, and means what it says."""
import math

import pytest
import torch
import torch.nn.functional as F

from global_model.config import get_cfg
from global_model.modeling import build_model
from global_model.sjdl.model import build_defog_decoder
from global_model.sjdl.losses import (UNSUPERVISED, SJDLLoss, colour_entropy_loss, dark_channel,
                                               fft_consistency_loss, restoration_loss, unsupervised_losses)


def sjdl_cfg(**sjdl):
    cfg = get_cfg("sjdl")
    cfg.MODEL.BACKBONE, cfg.MODEL.SJDL.WIDTH = "resnet10t", 8
    cfg.MODEL.SJDL.DC_PATCH = 5
    for k, v in sjdl.items():
        cfg.MODEL.SJDL[k] = v
    return cfg


@pytest.fixture(scope="module")
def net():
    """The decoder and the encoder maps it reads (computed once; the tests look at decoder gradients)."""
    torch.manual_seed(0)
    cfg = sjdl_cfg()
    model = build_model(cfg, 6).train()
    images = torch.randn(3, 3, 32, 40)
    with torch.no_grad():
        maps = model(images)["defog_maps"]
    return cfg, maps, images, build_defog_decoder(cfg, model).train()


def smooth_images(n=3, h=32, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, h // 8, w // 8, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("term", UNSUPERVISED)
def test_every_unsupervised_term_trains_the_decoder(net, term):
    cfg, maps, images, decoder = net
    decoded, enhanced = decoder(*maps, images)
    foggy = smooth_images()
    for restored in (decoded, enhanced):
        decoder.zero_grad(set_to_none=True)
        loss = unsupervised_losses(restored, foggy, cfg.MODEL.SJDL.DC_PATCH, terms=[term])[term]
        loss.backward(retain_graph=True)
        # the first decoder layer (fed by layer1) and the RGB head both receive gradient
        first = decoder.reduce[0].body[1].weight.grad
        rgb = decoder.to_rgb[1].weight.grad
        assert first is not None and rgb is not None, term
        assert first.abs().sum() > 0 and rgb.abs().sum() > 0 and torch.isfinite(first).all(), term


@pytest.mark.parametrize("term", UNSUPERVISED)
def test_terms_use_the_whole_batch(term):
    restored = smooth_images(4, seed=1).requires_grad_(True)
    loss = unsupervised_losses(restored, smooth_images(4, seed=2), dc_patch=5, terms=[term])[term]
    loss.backward()
    per_image = restored.grad.abs().flatten(1).sum(1)
    assert (per_image > 0).all(), f"{term}: images without gradient: {per_image.tolist()}"


def test_dark_channel_is_the_patch_minimum_of_the_channel_minimum():
    x = torch.rand(2, 3, 9, 11)
    dc = dark_channel(x, patch=3)
    m = x.min(1).values
    for b, i, j in [(0, 0, 0), (1, 4, 5), (0, 8, 10), (1, 3, 0)]:
        window = m[b, max(0, i - 1):i + 2, max(0, j - 1):j + 2]
        assert dc[b, 0, i, j] == window.min()
    with pytest.raises(ValueError, match="MODEL.SJDL.DC_PATCH must be an odd"):
        dark_channel(x, patch=4)


def test_colour_entropy_is_zero_for_a_flat_histogram_and_log_bins_for_one_value():
    bins = 16
    ramp = torch.linspace(0, 1, bins).repeat(bins * 4)  # every bin centre equally often
    flat = ramp.view(1, 1, bins * 4, bins).expand(2, 3, -1, -1).contiguous()
    assert colour_entropy_loss(flat, bins) == pytest.approx(0.0, abs=1e-4)
    one_bin = torch.full((2, 3, 8, 8), 3 / (bins - 1))
    assert colour_entropy_loss(one_bin, bins) == pytest.approx(math.log(bins), abs=1e-3)
    assert colour_entropy_loss(smooth_images(), bins) < colour_entropy_loss(smooth_images() * 0.2 + 0.4, bins)


def test_fft_term_ignores_fog_like_contrast_changes_and_penalises_structure_changes():
    foggy = smooth_images(2, 32, 32) * 0.5 + 0.3
    defogged = (foggy - 0.3) * 1.6 + 0.1  # the inverse of a uniform veil: a positive gain and an offset
    assert fft_consistency_loss(defogged, foggy) == pytest.approx(0.0, abs=1e-4)
    assert fft_consistency_loss(foggy.roll(7, -1), foggy) > 0.1
    assert fft_consistency_loss(torch.full_like(foggy, 0.5) + 0.05 * torch.rand_like(foggy), foggy) > 0.1


def test_restoration_loss_kinds():
    clear, out = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert restoration_loss(out, clear, clear, "mse") == pytest.approx(0.5 * 0.25)
    assert restoration_loss(out, out, clear, "l1") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="MODEL.SJDL.REST_LOSS must be one of mse, l1"):
        restoration_loss(out, out, clear, "ssim")


def test_sjdl_loss_splits_rows_and_classifier_blocks():
    cfg = sjdl_cfg(DC_WEIGHT=1.0, TV_WEIGHT=0.0, ENTROPY_WEIGHT=2.0, FFT_WEIGHT=0.5)
    loss = SJDLLoss(cfg, num_syn_ids=2, num_real_ids=3, feat_dim=4)
    g = torch.Generator().manual_seed(0)
    n, m = 4, 4
    feats = torch.randn(n + m, 4, generator=g)
    outputs = {"logits": [torch.randn(n + m, 5, generator=g)], "triplet_feats": [feats], "center_feats": [feats],
               "decoded": smooth_images(n + m, seed=3), "enhanced": smooth_images(n + m, seed=4)}
    images = torch.randn(n + m, 3, 32, 40, generator=g)
    batch = {"images": images[:n], "pids": torch.tensor([0, 0, 1, 1]), "clear": torch.randn(n, 3, 32, 40),
             "has_clear": torch.tensor([True, True, False, True])}
    syn_total, syn_parts = loss(outputs, batch)
    assert set(syn_parts) == {"ce", "triplet", "rest"}
    both_total, parts = loss(outputs, {**batch, "images": images, "real_pids": torch.tensor([2, 2, 4, 4])})
    assert set(parts) == {"ce", "triplet", "rest", "real_ce", "real_triplet", "dark", "entropy", "fft"}
    expected = syn_total + (parts["real_ce"] + parts["real_triplet"] + parts["dark"] + 2.0 * parts["entropy"]
                            + 0.5 * parts["fft"])
    assert float(both_total) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match=r"batch\['pids'\] must lie in 0..2"):
        loss(outputs, {**batch, "images": images, "real_pids": torch.tensor([2, 2, 5, 5])})


def test_sjdl_loss_keeps_every_model_output_for_the_reid_terms():
    """A per-row output the SJDL loss does not know is split into the two row blocks, never dropped."""
    loss = SJDLLoss(sjdl_cfg(), num_syn_ids=2, num_real_ids=0, feat_dim=4)
    seen = {}
    loss.syn.forward = lambda outputs, batch: (seen.update(outputs) or torch.zeros(()), {})
    feats = torch.randn(4, 4)
    outputs = {"logits": [torch.randn(4, 2)], "triplet_feats": [feats], "part_feats": [feats, feats],
               "decoded": smooth_images(4), "enhanced": smooth_images(4)}
    loss(outputs, {"images": torch.zeros(4, 3, 32, 40), "pids": torch.tensor([0, 0, 1, 1])})
    assert set(seen) == {"logits", "triplet_feats", "part_feats"} and len(seen["part_feats"]) == 2
    with pytest.raises(ValueError, match="model output 'extra' is not a tensor or a list of tensors"):
        loss({**outputs, "extra": {"a": 1}}, {"images": torch.zeros(4, 3, 32, 40), "pids": torch.tensor([0, 0, 1, 1])})
