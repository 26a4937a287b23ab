"""Multiple Granularity Network (Wang et al., ACM MM 2018) with the AIC20 5th-place left/right branch.

A ResNet-like backbone from the global factory is cut after ``layer3[0]``; that trunk is shared and
every branch owns a copy of ``layer3[1:]`` and ``layer4`` (ImageNet weights copied into each):

- ``g``: layer4 at stride 2, one global vector;
- ``hN``: layer4 at stride 1, a global vector plus N horizontal stripes (top to bottom);
- ``vN``: layer4 at stride 1, a global vector plus N vertical strips (left to right).

Every pooled vector goes through its own 1×1 conv to ``MODEL.MGN.REDUCTION_DIM`` + BN and its own
classifier. Training output (the shared contract): all logits, the branch global vectors as
``triplet_feats``, and the test feature as ``center_feats``. Eval output: the concatenation of the
``MODEL.MGN.TEST_VECTORS`` vectors (all by default), unnormalised like every model's.
"""
from __future__ import annotations

import copy
import re
from typing import Dict, List, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from global_model.config import ConfigError
from global_model.modeling import register_arch
from global_model.modeling.backbones import (PROBE_SIZE, build_backbone, dry_run, remove_last_downsample,
                                             resnet_stages)
from global_model.modeling.heads import classifier, weights_init_kaiming

POOLINGS = ("max", "avg")


class Branch(NamedTuple):
    name: str  # "g", "h2", "v2", ...
    axis: str  # "" (global only), "h" (horizontal stripes) or "v" (vertical strips)
    parts: int

    @property
    def vectors(self) -> List[str]:
        return [self.name] + [f"{self.name}.{i}" for i in range(self.parts)]


def parse_branches(specs) -> List[Branch]:
    """``MODEL.MGN.BRANCHES`` entries ("g", "hN", "vN") → branches; bad or repeated entries raise."""
    branches = []
    for spec in specs:
        match = re.fullmatch(r"g|([hv])([1-9][0-9]*)", str(spec))
        if not match:
            raise ConfigError(f"MODEL.MGN.BRANCHES entry {spec!r} is not 'g', 'hN' or 'vN' (N stripes, e.g. 'h2')")
        branches.append(Branch(spec, match.group(1) or "", int(match.group(2) or 0)))
    names = [b.name for b in branches]
    if not branches or len(set(names)) != len(names):
        raise ConfigError(f"MODEL.MGN.BRANCHES must list distinct branches, got {list(specs)}")
    return branches


def _reduction(in_dim: int, out_dim: int) -> nn.Sequential:
    block = nn.Sequential(nn.Conv2d(in_dim, out_dim, 1, bias=False), nn.BatchNorm2d(out_dim))
    block.apply(weights_init_kaiming)
    return block


@register_arch("mgn")
class MGN(nn.Module):
    """MGN over a ResNet-like backbone; see the module docstring."""

    def __init__(self, cfg, num_classes: int):
        super().__init__()
        m, g = cfg.MODEL, cfg.MODEL.MGN
        if g.POOLING not in POOLINGS:
            raise ConfigError(f"MODEL.MGN.POOLING must be one of {', '.join(POOLINGS)}, got {g.POOLING!r}")
        if g.REDUCTION_DIM < 1:
            raise ConfigError(f"MODEL.MGN.REDUCTION_DIM must be a positive width, got {g.REDUCTION_DIM}")
        self.branch_specs = parse_branches(g.BRANCHES)
        self.vector_names = [v for b in self.branch_specs for v in b.vectors]
        self.test_vectors = list(g.TEST_VECTORS) or list(self.vector_names)
        unknown = [v for v in self.test_vectors if v not in self.vector_names]
        if unknown:
            raise ConfigError(f"MODEL.MGN.TEST_VECTORS {unknown} are not vectors of MODEL.MGN.BRANCHES; "
                              f"available: {', '.join(self.vector_names)}")
        self.pool = F.adaptive_max_pool2d if g.POOLING == "max" else F.adaptive_avg_pool2d

        backbone, channels = build_backbone(m.BACKBONE, m.PRETRAINED, m.PRETRAIN_PATH, last_stride=2)
        stem, (layer1, layer2, layer3, layer4) = resnet_stages(backbone.body)
        self.trunk = nn.Sequential(stem, layer1, layer2, layer3[0])
        layer3_rest = nn.Sequential(*list(layer3)[1:])
        layer4_fine = copy.deepcopy(layer4)  # the stride-1 layer4 of the stripe branches
        probe = dry_run(nn.Sequential(self.trunk, layer3_rest), torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE))
        remove_last_downsample(layer4_fine, probe)
        self.branches = nn.ModuleDict({
            b.name: nn.Sequential(copy.deepcopy(layer3_rest), copy.deepcopy(layer4 if not b.axis else layer4_fine))
            for b in self.branch_specs})
        width = g.REDUCTION_DIM
        self.reductions = nn.ModuleDict({_key(v): _reduction(channels, width) for v in self.vector_names})
        self.classifiers = nn.ModuleDict({_key(v): classifier(width, num_classes) for v in self.vector_names})
        self.vector_dim = width
        self.feat_dim = width * len(self.test_vectors)

    def vectors(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Every reduced vector (B×REDUCTION_DIM) by name, in branch order."""
        shared = self.trunk(images)
        out: Dict[str, torch.Tensor] = {}
        for b in self.branch_specs:
            fmap = self.branches[b.name](shared)
            pooled = [self.pool(fmap, 1)]
            if b.axis:
                grid = self.pool(fmap, (b.parts, 1) if b.axis == "h" else (1, b.parts))
                pooled += list(grid.split(1, dim=2 if b.axis == "h" else 3))
            for name, p in zip(b.vectors, pooled):
                out[name] = self.reductions[_key(name)](p).flatten(1)
        return out

    def forward(self, images: torch.Tensor):
        vectors = self.vectors(images)
        feature = torch.cat([vectors[v] for v in self.test_vectors], dim=1)
        if not self.training:
            return feature
        return {"logits": [self.classifiers[_key(v)](vectors[v]) for v in self.vector_names],
                "triplet_feats": [vectors[b.name] for b in self.branch_specs],
                "center_feats": [feature]}


def _key(vector: str) -> str:
    """ModuleDict keys may not contain '.'."""
    return vector.replace(".", "_")
