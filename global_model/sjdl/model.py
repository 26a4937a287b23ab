"""SJDL's networks: the encoder (the ``baseline`` global model) and the defogging decoder.

The encoder is the ``baseline`` global model (any ResNet-like backbone of the factory, pooling,
BNNeck, classifier). During training a :class:`DefogDecoder` reads the encoder's stem and layer1
maps (``Backbone.forward_intermediates``) and rebuilds the fog-free image, so the early layers must
keep what defogging needs; the ReID features downstream become fog-robust. The decoder is an
auxiliary module of the SJDL trainer, not part of this model: ``extract`` builds and runs the
encoder alone, and an SJDL checkpoint's ``model`` entry loads like any global model.

Images are decoded in **[0, 1] RGB** (sigmoid output); the decoder de-normalises its input with
``INPUT.PIXEL_MEAN/STD`` itself, and losses and PSNR/SSIM compare against the clear image mapped
to [0, 1] by :func:`to_unit_range` — one range everywhere, whatever the input normalisation.

The synthetic-pair and real-fog identities get separate classifiers as the two row blocks of the
one bias-free ``classifier`` (ids ``0..S-1`` synthetic, ``S..C-1`` real): softmax over a block is
exactly a separate classifier, and the checkpoint keeps the layout every global model shares.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling import register_arch
from ..modeling.backbones import BackboneError, dry_run
from ..modeling.baseline import Baseline
from ..modeling.heads import weights_init_kaiming
from .config import SJDLConfigError

__all__ = ["SJDL", "DefogDecoder", "EnhanceHead", "ResidualBlock", "build_defog_decoder", "defog",
           "to_unit_range"]

PROBE_SIZE = 64  # side of the dry-run image used to measure the stem/layer1 maps
DEFOG_MAPS = ("stem", "layer1")  # the encoder maps the decoder reads


def to_unit_range(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalised B×3×H×W network input → RGB in [0, 1] (the inverse of the transforms' normalisation)."""
    m = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images * s + m).clamp(0.0, 1.0)


@register_arch("sjdl")
class SJDL(Baseline):
    """The baseline encoder/head that also hands its stem and layer1 maps to the defogging decoder.

    ``train()``: ``forward`` returns the baseline output dict plus ``"defog_maps": (stem, layer1)``.
    ``eval()``: the baseline's test feature only (the extractor contract; the graph torch.fx traces
    to fold BatchNorm); :meth:`defog_maps` runs the stages up to layer1 for ``defog`` and validation.
    """

    def __init__(self, cfg, num_classes: int):
        super().__init__(cfg, num_classes)
        try:
            self.backbone.stage_names()
        except BackboneError as exc:
            raise BackboneError(f"MODEL.META_ARCH sjdl needs a ResNet-like backbone (stem, layer1..layer4) whose "
                                f"stem and layer1 feed the defogging decoder; MODEL.BACKBONE "
                                f"{cfg.MODEL.BACKBONE!r}: {exc}") from None
        self.stem_channels, self.layer1_channels = self._measure()

    def _measure(self) -> Tuple[int, int]:
        stem, low = dry_run(self, torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE), self.defog_maps)
        if stem.shape[-2:] != low.shape[-2:] or PROBE_SIZE % stem.shape[-1] or PROBE_SIZE // stem.shape[-1] != 4:
            raise BackboneError(f"MODEL.BACKBONE {self.backbone.name}: the defogging decoder needs stem and layer1 "
                                f"maps at 1/4 of the input size; a {PROBE_SIZE}px probe gave "
                                f"{tuple(stem.shape[-2:])} and {tuple(low.shape[-2:])}")
        return int(stem.shape[1]), int(low.shape[1])

    def defog_maps(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(stem, layer1) maps of ``images``, running only the stages up to layer1."""
        maps = self.backbone.forward_intermediates(images, DEFOG_MAPS, intermediates_only=True)
        return maps["stem"], maps["layer1"]

    def forward(self, images: torch.Tensor):
        if not self.training:
            return super().forward(images)
        final, maps = self.backbone.forward_intermediates(images, DEFOG_MAPS)
        out = self.head(final)
        out["defog_maps"] = (maps["stem"], maps["layer1"])
        return out


class ResidualBlock(nn.Module):
    """Two reflect-padded 3×3 convolutions with instance norm and an identity shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _up(in_ch: int, out_ch: int) -> nn.Sequential:
    """Residual block, then a stride-2 transposed convolution that doubles the map (kernel 4, a
    multiple of the stride, so every output pixel gets the same number of taps: no checkerboard)."""
    return nn.Sequential(ResidualBlock(in_ch), nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1),
                         nn.InstanceNorm2d(out_ch), nn.ReLU(True))


class EnhanceHead(nn.Module):
    """Pyramid-pooling refinement of (foggy input, decoded image) → enhanced image in [0, 1].

    Two 3×3 convolutions, then average pools with windows ``scales`` (adaptive, so any input size
    works), each squeezed to one channel and upsampled back, concatenated with the features and
    mixed by a last 3×3 convolution.
    """

    def __init__(self, width: int = 20, scales: Sequence[int] = (32, 16, 8, 4)):
        super().__init__()
        self.scales = tuple(int(s) for s in scales)
        self.features = nn.Sequential(nn.Conv2d(6, width, 3, padding=1), nn.LeakyReLU(0.2, True),
                                      nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2, True))
        self.squeeze = nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in self.scales)
        self.out = nn.Conv2d(width + len(self.scales), 3, 3, padding=1)

    def forward(self, foggy: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
        x = self.features(torch.cat([foggy, decoded], 1))
        h, w = x.shape[-2:]
        levels = [x]
        for scale, squeeze in zip(self.scales, self.squeeze):
            pooled = F.adaptive_avg_pool2d(x, (max(1, h // scale), max(1, w // scale)))
            levels.insert(0, F.interpolate(F.relu(squeeze(pooled)), size=(h, w), mode="nearest"))
        return torch.sigmoid(self.out(torch.cat(levels, 1)))


class DefogDecoder(nn.Module):
    """Stem + layer1 maps (1/4 resolution) → decoded and enhanced fog-free images in [0, 1].

    layer1 → residual block → 3×3 conv to ``width``; concatenated with the stem map → two
    (residual block, transposed conv) steps back to full resolution → 7×7 conv to RGB → sigmoid.
    The enhancement head refines (foggy input, decoded image) with pyramid pooling.
    """

    def __init__(self, stem_channels: int, layer1_channels: int, width: int = 64,
                 mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225)):
        super().__init__()
        if width < 2:
            raise SJDLConfigError(f"MODEL.SJDL.WIDTH must be at least 2, got {width}")
        self.reduce = nn.Sequential(ResidualBlock(layer1_channels), nn.Conv2d(layer1_channels, width, 3, padding=1),
                                    nn.InstanceNorm2d(width), nn.ReLU(True))
        self.up1 = _up(width + stem_channels, width)
        self.up2 = _up(width, width // 2)
        self.to_rgb = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(width // 2, 3, 7))
        self.enhance = EnhanceHead()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32), persistent=False)
        self.apply(weights_init_kaiming)

    def forward(self, stem: torch.Tensor, layer1: torch.Tensor,
                images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``images`` is the normalised network input; returns (decoded, enhanced), B×3×H×W in [0, 1]."""
        x = self.up2(self.up1(torch.cat([self.reduce(layer1), stem], 1)))
        decoded = torch.sigmoid(self.to_rgb(x))
        if decoded.shape[-2:] != images.shape[-2:]:  # inputs not divisible by 4
            decoded = F.interpolate(decoded, size=images.shape[-2:], mode="bilinear", align_corners=False)
        foggy = to_unit_range(images, self.mean, self.std).to(decoded.dtype)
        return decoded, self.enhance(foggy, decoded)


def defog(model: SJDL, decoder: DefogDecoder, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(decoded, enhanced) [0, 1] images of a normalised batch: the encoder's stem/layer1, then the decoder."""
    return decoder(*model.defog_maps(images), images)


def build_defog_decoder(cfg, model: SJDL) -> DefogDecoder:
    """The decoder for ``model``'s stem/layer1 widths, ``MODEL.SJDL.WIDTH`` and the input normalisation."""
    return DefogDecoder(model.stem_channels, model.layer1_channels, cfg.MODEL.SJDL.WIDTH,
                        cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)
