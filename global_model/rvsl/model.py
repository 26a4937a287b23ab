"""RVSL's networks: two encoders around one shared ReID trunk, two translators, two discriminators.

- :class:`RVSL` (``MODEL.META_ARCH rvsl``): a clear encoder ``E_C`` and a hazy encoder ``E_H``,
  each a copy of the backbone's stem + layer1, and one shared trunk (layer2..layer4) with
  GAP + BNNeck + bias-free classifier. Extraction runs the path ``TEST.RVSL_PATH`` names (hazy,
  clear, or the mean of both features), so an RVSL checkpoint extracts like any global model.
- :class:`Translator`: a small U-Net decoder from an encoder's layer1 map with a skip from its
  half-resolution stem map, ending in a sigmoid, so images are **[0, 1] RGB** everywhere (the
  published decoder is unbounded while its targets are [0, 1]). ``to_clear`` renders clear from
  hazy features (``D_C``), ``to_hazy`` hazy from clear features (``D_H``).
- :class:`PatchDiscriminator`: the CycleGAN PatchGAN (LSGAN objective), one per domain.
- :class:`ImagePool`: CycleGAN's replay pool of generated images (torch RNG; checkpointed by the trainer).

Translators and discriminators are the trainer's auxiliary modules, not part of the model.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling import register_arch
from ..modeling.backbones import BackboneError, build_backbone, dry_run, resnet_stage_names
from ..modeling.heads import bnneck, build_pooling, classifier, weights_init_kaiming

__all__ = ["Encoder", "ImagePool", "PatchDiscriminator", "RVSL", "Translator", "normalise", "to_unit"]

PROBE_SIZE = 64


def to_unit(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalised network input → RGB in [0, 1]."""
    m = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images * s + m).clamp(0.0, 1.0)


def normalise(unit: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """[0, 1] RGB → normalised network input (a generated image fed to an encoder)."""
    m = torch.as_tensor(mean, dtype=unit.dtype, device=unit.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=unit.dtype, device=unit.device).view(1, -1, 1, 1)
    return (unit - m) / s


class Encoder(nn.Module):
    """The stem + layer1 of a ResNet-like body; returns ``(layer1 map, skip map)`` where the skip map
    is the last stem output at half the input resolution (before the max-pool)."""

    def __init__(self, stem: List[nn.Module], layer1: nn.Module, skip_at: int):
        super().__init__()
        self.stem = nn.ModuleList(stem)
        self.layer1 = layer1
        self.skip_at = skip_at

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        skip = x
        for i, block in enumerate(self.stem):
            x = block(x)
            if i == self.skip_at:
                skip = x
        return self.layer1(x), skip


def _split_body(body: nn.Module, name: str) -> Tuple[Encoder, nn.Sequential]:
    try:
        names = resnet_stage_names(body)
    except BackboneError as exc:
        raise BackboneError(f"MODEL.META_ARCH rvsl needs a ResNet-like backbone (stem, layer1..layer4) to split "
                            f"into encoders and a shared trunk; MODEL.BACKBONE {name!r}: {exc}") from None
    cut = names.index("layer1")
    stem = [getattr(body, n) for n in names[:cut]]
    x, skip_at = torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE), -1
    with torch.no_grad():
        was = body.training
        body.eval()
        for i, block in enumerate(stem):
            x = block(x)
            if x.shape[-1] == PROBE_SIZE // 2:
                skip_at = i
        body.train(was)
    if skip_at < 0:
        raise BackboneError(f"MODEL.BACKBONE {name!r}: no stem map at half the input size for the translator skip")
    trunk = nn.Sequential(*[getattr(body, f"layer{i}") for i in (2, 3, 4)])
    return Encoder(stem, getattr(body, "layer1"), skip_at), trunk


@register_arch("rvsl")
class RVSL(nn.Module):
    """Clear and hazy encoders, the shared trunk and the ReID head; see the module docstring.

    ``embed(layer1)`` runs trunk + head: in training a loss dict (``logits``, ``triplet_feats``,
    ``center_feats``), in eval the test feature (``MODEL.TEST_FEAT``). ``forward`` in eval mode is
    the extraction contract (the path of ``TEST.RVSL_PATH``); training calls the parts directly.
    """

    def __init__(self, cfg, num_classes: int):
        super().__init__()
        from .config import check_rvsl_config

        check_rvsl_config(cfg)
        m = cfg.MODEL
        backbone, channels = build_backbone(m.BACKBONE, m.PRETRAINED, m.PRETRAIN_PATH, m.LAST_STRIDE)
        self.clear_encoder, self.trunk = _split_body(backbone.body, m.BACKBONE)
        self.hazy_encoder = copy.deepcopy(self.clear_encoder)
        self.pool = build_pooling(m.POOLING, m.GEM_P)
        self.feat_dim = channels
        self.neck = bnneck(channels)
        self.classifier = classifier(channels, num_classes)
        self.test_after_bn = m.TEST_FEAT == "after_bn"
        self.test_path = cfg.TEST.RVSL_PATH
        layer1, skip = dry_run(self.clear_encoder, torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE))
        self.layer1_channels, self.skip_channels = int(layer1.shape[1]), int(skip.shape[1])

    def encoder(self, domain: str) -> Encoder:
        return self.clear_encoder if domain == "clear" else self.hazy_encoder

    def embed(self, layer1: torch.Tensor):
        feat = self.pool(self.trunk(layer1)).flatten(1)
        normed = self.neck(feat)
        if self.training:
            return {"logits": [self.classifier(normed)], "triplet_feats": [feat], "center_feats": [feat]}
        return normed if self.test_after_bn else feat

    def forward(self, images: torch.Tensor):
        if self.training:
            raise RuntimeError("RVSL trains through its trainer (encoders, trunk and translators are called apart); "
                               "forward is the eval-mode extraction path")
        if self.test_path == "mean":
            # One trunk call over both paths' maps: each module runs once (torch.fx's BN folding in
            # ``prepare_for_inference`` would fold a BN twice into a convolution called twice).
            feats = self.embed(torch.cat([self.hazy_encoder(images)[0], self.clear_encoder(images)[0]]))
            n = images.shape[0]
            return 0.5 * (feats[:n] + feats[n:])
        return self.embed(self.encoder(self.test_path)(images)[0])


def _double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(True),
                         nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(True))


class Translator(nn.Module):
    """layer1 map (1/4) → double conv → ×2 → concat skip (1/2) → double conv → ×2 to the input size →
    double conv → 1×1 conv → sigmoid: an image in [0, 1]."""

    def __init__(self, in_channels: int, skip_channels: int, width: int = 64):
        super().__init__()
        self.reduce = _double_conv(in_channels, width)
        self.fuse = _double_conv(width + skip_channels, width)
        self.refine = _double_conv(width, width)
        self.to_rgb = nn.Conv2d(width, 3, 1)
        self.apply(weights_init_kaiming)

    def forward(self, layer1: torch.Tensor, skip: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(self.reduce(layer1), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse(torch.cat([x, skip], 1))
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        return torch.sigmoid(self.to_rgb(self.refine(x)))


class PatchDiscriminator(nn.Module):
    """CycleGAN PatchGAN on [0, 1] images: 4 conv4×4/2 blocks (width, ×2, ×4, ×8; instance norm after
    the first; LeakyReLU 0.2), zero-pad (1, 0, 1, 0), conv4×4 → one score per patch; init N(0, 0.02)."""

    def __init__(self, width: int = 64):
        super().__init__()
        layers: List[nn.Module] = []
        in_ch = 3
        for i, mult in enumerate((1, 2, 4, 8)):
            layers.append(nn.Conv2d(in_ch, width * mult, 4, stride=2, padding=1))
            if i:
                layers.append(nn.InstanceNorm2d(width * mult))
            layers.append(nn.LeakyReLU(0.2, True))
            in_ch = width * mult
        layers += [nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(in_ch, 1, 4, padding=1)]
        self.net = nn.Sequential(*layers)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.normal_(mod.weight, 0.0, 0.02)
                nn.init.zeros_(mod.bias)

    def forward(self, unit_images: torch.Tensor) -> torch.Tensor:
        return self.net(unit_images * 2.0 - 1.0)


class ImagePool:
    """Up to ``size`` earlier generated images; :meth:`query` returns, per image, either it (while the
    pool fills, or with probability 1/2) or a stored one it replaces (CycleGAN's replay buffer)."""

    def __init__(self, size: int = 50):
        self.size = int(size)
        self.images: List[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif float(torch.rand(())) < 0.5:
                k = int(torch.randint(len(self.images), ()))
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> Dict[str, Optional[torch.Tensor]]:
        return {"images": torch.stack(self.images).cpu() if self.images else None}

    def load_state_dict(self, state: Dict[str, Optional[torch.Tensor]], device: torch.device) -> None:
        images = state.get("images")
        self.images = [] if images is None else [t.to(device) for t in images]
