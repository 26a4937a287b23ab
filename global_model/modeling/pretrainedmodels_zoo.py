"""The ``pretrainedmodels`` backbone source (Cadene's zoo), with timm's twins of its SE networks.

pretrainedmodels 0.7.4 (2018, unmaintained) stays the source of these names, but does not have to be
the only one. Its SE-ResNet, SE-ResNeXt and SENet networks live on in timm as ``legacy_*`` models
(:data:`TIMM_TWINS`) with the same modules, state-dict keys, shapes and feature maps, so a config
naming ``se_resnext101_32x4d`` builds the same network either way and a checkpoint trained with one
loads into the other. For these names:

- the network is pretrainedmodels' when that library imports, else the timm twin;
- ImageNet weights come from whichever cache holds them: pretrainedmodels' file in the torch hub
  cache, else the twin's timm cache (torch hub or Hugging Face hub); with neither, they are
  downloaded from the first of the two hosts that answers. Both libraries distribute Cadene's
  conversions of the original SENet release.

Other pretrainedmodels names (``bninception``, ``polynet``, ...) need the library itself.
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Callable, List, Optional, Tuple

import torch
from torch import nn

from . import backbones
from .backbones import BACKBONE_SOURCES, BackboneError, BackboneSource

__all__ = ["PretrainedModels", "TIMM_TWINS"]

logger = logging.getLogger(__name__)

# pretrainedmodels name -> timm model with the same architecture and state-dict keys (tests check both).
TIMM_TWINS = {
    "se_resnet50": "legacy_seresnet50",
    "se_resnet101": "legacy_seresnet101",
    "se_resnet152": "legacy_seresnet152",
    "se_resnext50_32x4d": "legacy_seresnext50_32x4d",
    "se_resnext101_32x4d": "legacy_seresnext101_32x4d",
    "senet154": "legacy_senet154",
}


def _library():
    """The pretrainedmodels module, or None when it cannot be imported (logged once per call site)."""
    try:
        import pretrainedmodels
    except ImportError as exc:
        logger.info("pretrainedmodels cannot be imported (%s); its SE networks build from timm", exc)
        return None
    return pretrainedmodels


class PretrainedModels(BackboneSource):
    """``pretrainedmodels:<arch>``; the :data:`TIMM_TWINS` names also without the library."""

    order = 1

    def names(self) -> List[str]:
        library = _library()
        return list(library.model_names) if library is not None else list(TIMM_TWINS)

    def build(self, arch: str, pretrained: bool) -> Tuple[nn.Module, str]:
        library = _library()  # None: only the TIMM_TWINS names resolve to this source (see names)
        twin = TIMM_TWINS.get(arch)
        if twin is None:
            factory = getattr(library, arch)
            with warnings.catch_warnings():  # pretrainedmodels calls torchvision with its deprecated 'pretrained'
                warnings.simplefilter("ignore", UserWarning)
                return _library_body(factory, arch, pretrained), "features"
        if library is not None:
            body, mode = _library_body(getattr(library, arch), arch, False), "features"
        else:
            import timm

            body, mode = timm.create_model(twin, pretrained=False, num_classes=0), "forward_features"
        if pretrained:
            _load_imagenet(body, arch, twin, library)
        return body, mode


def _library_body(factory: Callable[..., nn.Module], arch: str, pretrained: bool) -> nn.Module:
    import pretrainedmodels

    if pretrained:
        settings = pretrainedmodels.pretrained_settings.get(arch, {}).get("imagenet")
        if settings is None:
            raise BackboneError(f"pretrainedmodels has no 'imagenet' weights for '{arch}'; pass MODEL.PRETRAIN_PATH "
                                f"or set MODEL.PRETRAINED False")
        backbones._torch_hub_guard(f"pretrainedmodels:{arch}", settings["url"])
        body = backbones._library_call(f"pretrainedmodels:{arch}", settings["url"],
                                       lambda: factory(num_classes=settings["num_classes"], pretrained="imagenet"))
    else:
        body = factory(num_classes=1000, pretrained=None)
    body.last_linear = nn.Identity()
    return body


def _load_imagenet(body: nn.Module, arch: str, twin: str, library) -> None:
    """ImageNet weights of ``arch`` into ``body`` from the first cache holding them, else downloaded."""
    import timm

    label = f"pretrainedmodels:{arch}"
    looked: List[str] = []
    url: Optional[str] = None
    if library is not None:
        url = library.pretrained_settings[arch]["imagenet"]["url"]
        path = backbones._torch_hub_file(url)
        if os.path.isfile(path):
            return _load_file(body, path, label, "pretrainedmodels cache")
        looked.append(path)
    cached, timm_looked, timm_remote = backbones._timm_cached_file(twin)
    if cached:
        return _load_file(body, cached, label, f"timm cache of {twin}")
    looked += timm_looked
    if url and backbones._reachable(url):
        state = backbones._library_call(label, url, lambda: torch.hub.load_state_dict_from_url(url, map_location="cpu"))
        return backbones._load_into(body, state, label, url)
    offline = "huggingface.co" in timm_remote and backbones._hf_offline()
    if not offline and backbones._reachable(timm_remote):
        source = backbones._library_call(label, timm_remote,
                                         lambda: timm.create_model(twin, pretrained=True, num_classes=0))
        return backbones._load_into(body, source.state_dict(), label, timm_remote)
    raise backbones._missing_weights(label, looked, " or ".join(r for r in (url, timm_remote) if r))


def _load_file(body: nn.Module, path: str, label: str, where: str) -> None:
    logger.info("backbone %s: ImageNet weights from the %s (%s)", label, where, path)
    backbones._load_into(body, backbones.read_state_dict(path, f"weight file in the {where}"), label, path)


BACKBONE_SOURCES.register("pretrainedmodels", PretrainedModels())
