"""The global (single-vector) model of the AIC20 5th-place ensemble and reid-strong-baseline.

backbone → pooling (avg | max | GeM) → optional 1×1 conv to ``MODEL.REDUCTION_DIM`` → BNNeck →
bias-free classifier. The reduction has no norm or ReLU of its own: AIC20-5th's "GAP → 1×1 conv
to 2048 → BN → FC" uses the BNNeck as that BN, so triplet/center losses see the conv output and
the classifier sees it batch-normalised.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ConfigError
from . import register_arch
from .backbones import build_backbone
from .heads import bnneck, build_pooling, classifier, weights_init_kaiming

NECKS = ("bnneck", "none")
TEST_FEATS = ("before_bn", "after_bn")


@register_arch("baseline")
class Baseline(nn.Module):
    """Backbone + pooled embedding + BNNeck + classifier; see the module docstring."""

    def __init__(self, cfg, num_classes: int):
        super().__init__()
        m = cfg.MODEL
        if m.NECK not in NECKS:
            raise ConfigError(f"MODEL.NECK must be one of {', '.join(NECKS)}, got {m.NECK!r}")
        if m.TEST_FEAT not in TEST_FEATS:
            raise ConfigError(f"MODEL.TEST_FEAT must be one of {', '.join(TEST_FEATS)}, got {m.TEST_FEAT!r}")
        if m.REDUCTION_DIM < 0:
            raise ConfigError(f"MODEL.REDUCTION_DIM must be 0 (off) or a width, got {m.REDUCTION_DIM}")
        self.backbone, channels = build_backbone(m.BACKBONE, m.PRETRAINED, m.PRETRAIN_PATH, m.LAST_STRIDE)
        self.pool = build_pooling(m.POOLING, m.GEM_P)
        self.reduction = None
        if m.REDUCTION_DIM:
            self.reduction = nn.Conv2d(channels, m.REDUCTION_DIM, 1, bias=False)
            weights_init_kaiming(self.reduction)
        self.feat_dim = m.REDUCTION_DIM or channels
        self.neck = bnneck(self.feat_dim) if m.NECK == "bnneck" else None
        self.classifier = classifier(self.feat_dim, num_classes)
        self.test_after_bn = m.TEST_FEAT == "after_bn" and self.neck is not None

    def forward(self, images: torch.Tensor):
        return self.head(self.backbone(images))

    def head(self, feature_map: torch.Tensor):
        """Pooling, reduction, BNNeck and classifier on the backbone's final map (the forward contract)."""
        x = self.pool(feature_map)
        if self.reduction is not None:
            x = self.reduction(x)
        feat = x.flatten(1)
        normed = self.neck(feat) if self.neck is not None else feat
        if self.training:
            return {"logits": [self.classifier(normed)], "triplet_feats": [feat], "center_feats": [feat]}
        return normed if self.test_after_bn else feat
