"""SAN's networks: SA-Enc (the ``baseline`` global model on a stride-1 backbone) and SA-Dec.

SA-Enc is the ``baseline`` global model whose backbone keeps layer4 at layer3's resolution
(``MODEL.LAST_STRIDE 1``); any ResNet-like backbone of the factory works. During training
:class:`SADecoder` reads the layer1..layer4 maps (``Backbone.forward_intermediates``) and regresses
the target image: a 1×1 embedding of layer4 plus one of layer3, then four up-sampling residual
blocks (×2 each, back to the input size from 1/16) with additive 1×1-embedded skips from layer2
and layer1, a 7×7 convolution to RGB and a sigmoid, so the output is bounded to the targets'
[0, 1] range. The decoder is an auxiliary module of the SAN trainer, not part of this model: in
``eval()`` the model returns the encoder's test feature only, and ``extract`` runs it like any
global model.

Initialisation: kaiming-normal convolutions, the last one near zero so the output starts grey
instead of saturated (the published xavier-normal with gain 0.02 shrinks
every convolution's output ~50×, so across the decoder's dozen convolutions its output starts
constant and passes almost no gradient to the encoder).
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
from .config import SANConfigError

__all__ = ["SAN", "SADecoder", "STAGE_MAPS", "UpBlock", "build_decoder"]

PROBE_SIZE = 64  # side of the dry-run image used to measure the stage maps
STAGE_MAPS = ("layer1", "layer2", "layer3", "layer4")  # the encoder maps the decoder reads

Maps = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@register_arch("san")
class SAN(Baseline):
    """The baseline encoder/head that also hands its layer1..layer4 maps to the decoder.

    ``train()``: ``forward`` returns the baseline output dict plus ``"san_maps"`` (layer1..layer4).
    ``eval()``: the baseline's test feature only. :meth:`stage_maps` runs the backbone alone for
    the panels command.
    """

    def __init__(self, cfg, num_classes: int):
        super().__init__(cfg, num_classes)
        try:
            self.backbone.stage_names()
        except BackboneError as exc:
            raise BackboneError(f"MODEL.META_ARCH san needs a ResNet-like backbone (stem, layer1..layer4) whose "
                                f"stage maps feed the decoder; MODEL.BACKBONE {cfg.MODEL.BACKBONE!r}: {exc}") from None
        maps = dry_run(self, torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE), self.stage_maps)
        if maps[2].shape[-2:] != maps[3].shape[-2:]:
            raise BackboneError(f"MODEL.META_ARCH san needs a stride-1 last stage (MODEL.LAST_STRIDE 1): layer4 of "
                                f"{self.backbone.name} is {tuple(maps[3].shape[-2:])} but layer3 is "
                                f"{tuple(maps[2].shape[-2:])} on a {PROBE_SIZE}px probe")
        self.stage_channels = tuple(int(m.shape[1]) for m in maps)

    def stage_maps(self, images: torch.Tensor) -> Maps:
        """(layer1, layer2, layer3, layer4) maps of ``images``, running only the backbone."""
        maps = self.backbone.forward_intermediates(images, STAGE_MAPS, intermediates_only=True)
        return tuple(maps[name] for name in STAGE_MAPS)

    def forward(self, images: torch.Tensor):
        if not self.training:
            return super().forward(images)
        final, maps = self.backbone.forward_intermediates(images, STAGE_MAPS[:3])
        out = self.head(final)
        out["san_maps"] = (maps["layer1"], maps["layer2"], maps["layer3"], final)
        return out


class BasicResBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN plus the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpBlock(nn.Module):
    """Residual block, ReLU, bilinear ×2, reflect-padded 3×3 convolution to ``out_ch`` (SA-Dec's
    ConvResBlock), then BN + ReLU. The published block ends at the convolution; normalising its map
    keeps the decoder-triplet's MSE distances on the scale its margin assumes (without it the
    triplet meets the margin by inflating the maps, which saturates the output sigmoid)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.res = BasicResBlock(in_ch)
        self.conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3, bias=False),
                                  nn.BatchNorm2d(out_ch), nn.ReLU(True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(F.relu(self.res(x)), scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv(x)


def _embed(in_ch: int, out_ch: int) -> nn.Sequential:
    """1×1 convolution + BN + ReLU: a skip (or layer4) brought to the decoder's width."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(True))


def _fit(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``x`` resized to ``ref``'s map size when they differ (inputs whose sides are not multiples of 16)."""
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class SADecoder(nn.Module):
    """layer1..layer4 maps → (decoded B×3×H×W image in [0, 1], the four up-block outputs).

    ``channels`` are the widths of layer1..layer4, ``widths`` the embedding width and the four
    up-blocks' output widths. Skips are added where the resolutions meet: layer3 to layer4 (both
    1/16), layer2 after the first up-block (1/8), layer1 after the second (1/4).
    """

    def __init__(self, channels: Sequence[int], widths: Sequence[int] = (512, 256, 64, 32, 16)):
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"SADecoder needs the widths of layer1..layer4, got {list(channels)}")
        if len(widths) != 5 or min(widths) < 1:
            raise SANConfigError(f"MODEL.SAN.WIDTHS must be 5 positive widths (embedding, then the four up-blocks), "
                                 f"got {list(widths)}")
        c1, c2, c3, c4 = (int(c) for c in channels)
        w0, w1, w2, w3, w4 = (int(w) for w in widths)
        self.reduce, self.embed3 = _embed(c4, w0), _embed(c3, w0)
        self.up1, self.embed2 = UpBlock(w0, w1), _embed(c2, w1)
        self.up2, self.embed1 = UpBlock(w1, w2), _embed(c1, w2)
        self.up3, self.up4 = UpBlock(w2, w3), UpBlock(w3, w4)
        self.to_rgb = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(w4, 3, 7))
        self.apply(weights_init_kaiming)
        nn.init.normal_(self.to_rgb[1].weight, std=1e-3)  # start near grey (0.5), not saturated
        nn.init.zeros_(self.to_rgb[1].bias)

    def forward(self, maps: Sequence[torch.Tensor], size: Tuple[int, int]) -> Tuple[torch.Tensor, Maps]:
        """``size`` (H, W) is the output size (the input image's)."""
        l1, l2, l3, l4 = maps
        x = self.reduce(l4) + _fit(self.embed3(l3), l4)
        s1 = self.up1(x)
        s2 = self.up2(s1 + _fit(self.embed2(l2), s1))
        s3 = self.up3(s2 + _fit(self.embed1(l1), s2))
        s4 = self.up4(s3)
        decoded = torch.sigmoid(self.to_rgb(s4))
        if tuple(decoded.shape[-2:]) != tuple(size):
            decoded = F.interpolate(decoded, size=tuple(size), mode="bilinear", align_corners=False)
        return decoded, (s1, s2, s3, s4)


def build_decoder(cfg, model: SAN) -> SADecoder:
    """The decoder for ``model``'s stage widths and ``MODEL.SAN.WIDTHS``."""
    return SADecoder(model.stage_channels, tuple(cfg.MODEL.SAN.WIDTHS))
