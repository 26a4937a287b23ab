"""Backbone factory: a timm, pretrainedmodels, torchvision or IBN-Net network as a feature-map extractor.

``build_backbone(name)`` returns ``(Backbone, C)``: a module mapping images B×3×H×W to the last
feature map B×C×h×w. Names may force their source with a prefix (``timm:``,
``pretrainedmodels:``, ``torchvision:``, ``ibn:``); unprefixed names are looked up in that order.

Each source is a :class:`BackboneSource` registered in ``BACKBONE_SOURCES`` (``pretrainedmodels`` in
:mod:`global_model.modeling.pretrainedmodels_zoo`, with timm twins of its SE networks). Another library or a
local network (e.g. OSNet) is one new module registering one more source: a plugin module (entry-point
group ``reid_ensemble.plugins``), or ``global_model/modeling/<source>.py``, imported the first time
``MODEL.BACKBONE`` names ``<source>:<arch>``.

ImageNet weights come from each library's own cache (timm: the Hugging Face hub cache;
pretrainedmodels, torchvision and IBN-Net: the torch hub cache) or from a local file
(``MODEL.PRETRAIN_PATH``). A missing cache on a machine without network fails at once with the
paths looked at — a backbone is never silently left random when weights were asked for.
"""
from __future__ import annotations

import difflib
import importlib.util
import logging
import os
import socket
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlparse

import torch
from torch import nn
from post_processing.errors import ReidError
from post_processing.registry import Registry

logger = logging.getLogger(__name__)

PROBE_SIZE = 128  # side of the dry-run image used to measure channels and verify stride changes

# IBN-Net (Pan et al., ECCV 2018) ResNet-IBN-a release files; 152 has no published weights.
IBN_URLS = {
    "resnet18_ibn_a": "https://github.com/XingangPan/IBN-Net/releases/download/v1.0/resnet18_ibn_a-2f571257.pth",
    "resnet34_ibn_a": "https://github.com/XingangPan/IBN-Net/releases/download/v1.0/resnet34_ibn_a-94bc1577.pth",
    "resnet50_ibn_a": "https://github.com/XingangPan/IBN-Net/releases/download/v1.0/resnet50_ibn_a-d9d0bb7b.pth",
    "resnet101_ibn_a": "https://github.com/XingangPan/IBN-Net/releases/download/v1.0/resnet101_ibn_a-59ea0ac6.pth",
    "resnet152_ibn_a": None,
}
_PRETRAIN_HINT = ("download the weight file on a machine with network and set MODEL.PRETRAIN_PATH /path/to/file "
                  "(or copy it into the cache above), or set MODEL.PRETRAINED False to train from scratch")


class BackboneError(ReidError, ValueError):
    """A backbone name, weight file or stride request that cannot be honoured."""


STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")  # the names forward_intermediates knows


class Backbone(nn.Module):
    """Runs ``body`` (the library network, classifier removed) up to its last feature map.

    ``mode`` is ``forward_features`` (timm), ``features`` (pretrainedmodels, torchvision nets with a
    ``features`` block) or ``stages`` (ResNet-like nets run child by child up to ``layer4``).
    DenseNets get the final ReLU their libraries apply outside ``features``.
    """

    def __init__(self, body: nn.Module, mode: str, name: str):
        super().__init__()
        self.body = body
        self.mode = mode
        self.name = name
        self.post_relu = _is_densenet(body) and mode == "features"
        self._stages = resnet_stage_names(body) if mode == "stages" else []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "forward_features":
            x = self.body.forward_features(x)
        elif self.mode == "features":
            x = self.body.features(x)
        else:
            for name in self._stages:
                x = getattr(self.body, name)(x)
        return torch.relu(x) if self.post_relu else x

    def stage_names(self) -> List[str]:
        """The maps :meth:`forward_intermediates` can return: ``stem`` (everything before layer1),
        ``layer1`` .. ``layer4``. Only ResNet-like bodies have them; others raise a BackboneError."""
        self._stage_children()
        return list(STAGES)

    def _stage_children(self) -> Dict[str, List[str]]:
        try:
            children = resnet_stage_names(self.body)
        except BackboneError as exc:
            raise BackboneError(f"backbone '{self.name}' has no named stages for forward_intermediates "
                                f"(it needs a ResNet-like network: stem, layer1..layer4): {exc}") from None
        cut = children.index("layer1")
        if cut == 0:
            raise BackboneError(f"backbone '{self.name}' has no stem before layer1")
        return {"stem": children[:cut], **{name: [name] for name in children[cut:]}}

    def forward_intermediates(self, x: torch.Tensor, names: Sequence[str], intermediates_only: bool = False):
        """The named stage maps of ``x`` (timm's ``forward_intermediates``, by stage name).

        Returns ``(final map, {name: map})`` where the final map is what :meth:`forward` returns, or
        only the dict with ``intermediates_only`` (then only the stages up to the last named one
        run). The stages run child by child, exactly as ResNet's own ``forward_features`` does.
        """
        groups = self._stage_children()
        unknown = [n for n in names if n not in groups]
        if unknown or not names:
            raise BackboneError(f"forward_intermediates: unknown stage name(s) {unknown or list(names)} for backbone "
                                f"'{self.name}'; known: {', '.join(groups)}")
        last = max(STAGES.index(n) for n in names)
        maps: Dict[str, torch.Tensor] = {}
        for stage in STAGES[: last + 1] if intermediates_only else STAGES:
            for child in groups[stage]:
                x = getattr(self.body, child)(x)
            if stage in names:
                maps[stage] = x
        if intermediates_only:
            return maps
        return (torch.relu(x) if self.post_relu else x), maps


def _is_densenet(body: nn.Module) -> bool:
    import torchvision

    return isinstance(body, torchvision.models.DenseNet)


# ----------------------------------------------------------------------------- sources
class BackboneSource:
    """A library of networks that ``MODEL.BACKBONE`` names as ``<source>:<arch>``.

    ``build(arch, pretrained)`` returns ``(body, mode)``: the network without its classifier and how
    :class:`Backbone` runs it (``forward_features``, ``features`` or ``stages``, see there), with
    ImageNet weights when ``pretrained``. Unprefixed names are looked up in the sources in
    ascending ``order`` (then by name).
    """

    order = 100

    def names(self) -> List[str]:
        """Every architecture name the source knows (close-match suggestions come from it)."""
        raise NotImplementedError

    def has(self, arch: str) -> bool:
        """Whether ``arch`` is one of :meth:`names` (override when the library answers faster)."""
        return arch in self.names()

    def build(self, arch: str, pretrained: bool) -> Tuple[nn.Module, str]:
        raise NotImplementedError


def _discover_source(name: Optional[str]) -> None:
    """Source ``name`` not registered yet: import ``global_model.modeling.<name>`` when that module exists."""
    module = f"{__package__}.{name}"
    if name and name.isidentifier() and importlib.util.find_spec(module) is not None:
        importlib.import_module(module)


# source name -> BackboneSource
BACKBONE_SOURCES: Registry = Registry("backbone source", discover=_discover_source)


def _search_order() -> List[str]:
    return [n for _, n in sorted((source.order, n) for n, source in BACKBONE_SOURCES.items())]


def resolve_name(name: str) -> Tuple[str, str]:
    """``"[source:]arch"`` → ``(source, arch)``; unknown names raise with the closest known names."""
    source, sep, arch = name.partition(":")
    if not sep:
        source, arch = "", name
    elif BACKBONE_SOURCES.find(source) is None:
        raise BackboneError(f"backbone '{name}': unknown library prefix '{source}:' (expected one of "
                            f"{', '.join(s + ':' for s in _search_order())})")
    candidates = [source] if source else _search_order()
    for candidate in candidates:
        if BACKBONE_SOURCES.get(candidate).has(arch):
            return candidate, arch
    scored = []
    for candidate in candidates:
        for known in difflib.get_close_matches(arch, BACKBONE_SOURCES.get(candidate).names(), n=8, cutoff=0.6):
            scored.append((-difflib.SequenceMatcher(None, arch, known).ratio(), f"{candidate}:{known}"))
    close = [label for _, label in sorted(scored)[:8]]
    hint = f"; close matches: {', '.join(close)}" if close else ""
    where = f"library '{source}'" if source else f"any of {', '.join(candidates)}"
    raise BackboneError(f"unknown backbone '{name}' (MODEL.BACKBONE): not found in {where}{hint}")


# ----------------------------------------------------------------------------- weights in caches
def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url``'s host accepts a TCP connection within ``timeout`` seconds (fast offline check)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hf_offline() -> bool:
    import huggingface_hub.constants as hf_constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return bool(hf_constants.HF_HUB_OFFLINE) or env in {"1", "true", "yes", "on"}


def _torch_hub_file(url: str) -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(url).path))


def _missing_weights(label: str, looked: Sequence[str], remote: str) -> BackboneError:
    return BackboneError(
        f"no ImageNet weights for backbone '{label}' in the local cache and {remote} cannot be reached "
        f"(offline?). Looked for: {'; '.join(looked)}. Fix: {_PRETRAIN_HINT}.")


def _timm_cached_file(arch: str) -> Tuple[Optional[str], List[str], str]:
    """(cached weight file or None, places looked at, remote to download from) for a timm model."""
    import huggingface_hub
    import huggingface_hub.constants as hf_constants
    import timm.models

    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise BackboneError(f"timm has no ImageNet weights for '{arch}'; pass a weight file as MODEL.PRETRAIN_PATH "
                            f"or set MODEL.PRETRAINED False")
    if cfg.file:
        return cfg.file, [cfg.file], cfg.file
    looked: List[str] = []
    if cfg.hf_hub_id:
        for filename in ([cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]):
            hit = huggingface_hub.try_to_load_from_cache(cfg.hf_hub_id, filename)
            if isinstance(hit, str):
                return hit, looked, ""
        looked.append(os.path.join(hf_constants.HF_HUB_CACHE, "models--" + cfg.hf_hub_id.replace("/", "--")))
    if cfg.url:
        path = _torch_hub_file(cfg.url)
        if os.path.isfile(path):
            return path, looked, ""
        looked.append(path)
    remote = f"https://huggingface.co/{cfg.hf_hub_id}" if cfg.hf_hub_id else cfg.url
    return None, looked, remote


def _download_guard(label: str, looked: Sequence[str], remote: str) -> None:
    """Fail now when the weights are not cached and their host is unreachable (libraries retry for minutes)."""
    offline = "huggingface.co" in remote and _hf_offline()
    if offline or not _reachable(remote):
        raise _missing_weights(label, looked, remote)


def _torch_hub_guard(label: str, url: str) -> None:
    """Fail now unless ``url``'s file is in the torch hub cache or its host can be reached."""
    path = _torch_hub_file(url)
    if not os.path.isfile(path):
        _download_guard(label, [path], url)


def _library_call(label: str, origin: str, fn: Callable[[], nn.Module]) -> nn.Module:
    """``fn()`` (a library loading weights from ``origin``, a cache file or URL) with a clear error."""
    try:
        return fn()
    except Exception as exc:  # network, hash, format or key errors of the library's loader
        raise BackboneError(f"loading ImageNet weights for backbone '{label}' from {origin} failed: {exc}. "
                            f"Fix: {_PRETRAIN_HINT}.") from exc


# ----------------------------------------------------------------------------- the built-in sources
class _Timm(BackboneSource):
    order = 0

    def names(self) -> List[str]:
        import timm

        return timm.list_models()

    def has(self, arch: str) -> bool:
        import timm

        return timm.is_model(arch)  # accepts "arch.tag" pretrained-tag names too

    def build(self, arch: str, pretrained: bool) -> Tuple[nn.Module, str]:
        import timm

        label = f"timm:{arch}"
        if not pretrained:
            return timm.create_model(arch, pretrained=False, num_classes=0), "forward_features"
        cached, looked, remote = _timm_cached_file(arch)
        if cached:  # timm's own loader (with its checkpoint filters) reading the cached file, no network
            body = _library_call(label, cached, lambda: timm.create_model(arch, pretrained=True, num_classes=0,
                                                                          pretrained_cfg_overlay={"file": cached}))
            return body, "forward_features"
        _download_guard(label, looked, remote)
        body = _library_call(label, remote, lambda: timm.create_model(arch, pretrained=True, num_classes=0))
        return body, "forward_features"


class _Torchvision(BackboneSource):
    order = 2

    def names(self) -> List[str]:
        import torchvision

        return torchvision.models.list_models(module=torchvision.models)

    def build(self, arch: str, pretrained: bool) -> Tuple[nn.Module, str]:
        import torchvision

        if pretrained:
            weights = torchvision.models.get_model_weights(arch).DEFAULT
            _torch_hub_guard(f"torchvision:{arch}", weights.url)
            body = _library_call(f"torchvision:{arch}", weights.url,
                                 lambda: torchvision.models.get_model(arch, weights=weights))
        else:
            body = torchvision.models.get_model(arch, weights=None)
        if hasattr(body, "layer4") and hasattr(body, "fc"):
            body.fc = nn.Identity()
            return body, "stages"
        if hasattr(body, "features"):
            for head in ("classifier", "fc", "head"):
                if hasattr(body, head):
                    setattr(body, head, nn.Identity())
            return body, "features"
        raise BackboneError(f"torchvision model '{arch}' has neither ResNet stages nor a 'features' block; "
                            f"use a timm or pretrainedmodels name instead")


class IBN(nn.Module):
    """Instance-Batch Normalisation (IBN-a): InstanceNorm on the first half of the channels, BatchNorm on the rest.

    Attribute names ``IN``/``BN`` follow the IBN-Net release files so their weights load as they are.
    """

    def __init__(self, planes: int, ratio: float = 0.5):
        super().__init__()
        self.half = int(planes * ratio)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, rest = torch.split(x, [self.half, x.size(1) - self.half], dim=1)
        return torch.cat([self.IN(first.contiguous()), self.BN(rest.contiguous())], dim=1)


class _IbnA(BackboneSource):
    """ResNet-IBN-a: a torchvision ResNet whose blocks in layer1..layer3 use IBN for their first norm."""

    order = 3

    def names(self) -> List[str]:
        return list(IBN_URLS)

    def build(self, arch: str, pretrained: bool) -> Tuple[nn.Module, str]:
        import torchvision

        body = torchvision.models.get_model(arch[: -len("_ibn_a")], weights=None)
        for stage in (body.layer1, body.layer2, body.layer3):
            for block in stage:
                block.bn1 = IBN(block.bn1.num_features)
        body.fc = nn.Identity()
        if pretrained:
            url = IBN_URLS[arch]
            if url is None:
                raise BackboneError(f"IBN-Net published no ImageNet weights for '{arch}'; pass MODEL.PRETRAIN_PATH "
                                    f"or set MODEL.PRETRAINED False")
            _torch_hub_guard(f"ibn:{arch}", url)
            state = _library_call(f"ibn:{arch}", url,
                                  lambda: torch.hub.load_state_dict_from_url(url, map_location="cpu"))
            _load_into(body, state, f"ibn:{arch}", url)
        return body, "stages"


BACKBONE_SOURCES.register("timm", _Timm())
BACKBONE_SOURCES.register("torchvision", _Torchvision())
BACKBONE_SOURCES.register("ibn", _IbnA())


# ----------------------------------------------------------------------------- local weight files
def read_state_dict(path: str, what: str = "MODEL.PRETRAIN_PATH") -> Dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.pt``/``.bin``/``.safetensors`` file, unwrapped from common checkpoint
    containers; errors name the file as ``what`` (the config key, or the cache it was found in)."""
    if not os.path.isfile(path):
        raise BackboneError(f"{what} '{path}' does not exist or is not a file")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BackboneError(f"{what} '{path}' is not a readable weight file: {exc}") from exc
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneError(f"{what} '{path}' holds no state dict (a mapping of names to tensors)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def _load_into(body: nn.Module, state: Dict[str, torch.Tensor], label: str, origin: str) -> None:
    """Copy ``state`` into ``body``: missing or mis-shaped backbone tensors are errors, extra keys are logged."""
    own = body.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    shape = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    if missing or shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} backbone tensors missing from the file (e.g. {', '.join(missing[:8])})")
        if shape:
            parts.append(f"{len(shape)} with another shape (file vs model: {'; '.join(shape[:8])})")
        raise BackboneError(f"weights {origin} do not fit backbone '{label}': {' and '.join(parts)}")
    extra = [k for k in state if k not in own]
    if extra:
        logger.info("backbone %s: ignored %d tensors of %s not in the backbone (e.g. %s)",
                    label, len(extra), origin, ", ".join(extra[:5]))
    body.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


# ----------------------------------------------------------------------------- strides
def resnet_stage_names(body: nn.Module) -> List[str]:
    """Child names of a ResNet-like net from the stem through ``layer4`` (heads after it excluded)."""
    names = [n for n, _ in body.named_children()]
    if not all(f"layer{i}" in names for i in range(1, 5)):
        raise BackboneError(f"{type(body).__name__} is not ResNet-like: it has no layer1..layer4 "
                            f"(children: {', '.join(names)})")
    return names[: names.index("layer4") + 1]


def resnet_stages(body: nn.Module) -> Tuple[nn.Sequential, List[nn.Module]]:
    """``(stem, [layer1, layer2, layer3, layer4])`` of a ResNet-like net, for part models such as MGN."""
    names = resnet_stage_names(body)
    cut = names.index("layer1")
    stem = nn.Sequential(*[getattr(body, n) for n in names[:cut]])
    return stem, [getattr(body, f"layer{i}") for i in range(1, 5)]


def dry_run(module: nn.Module, probe: torch.Tensor, call: Optional[Callable[[torch.Tensor], Any]] = None):
    """``module(probe)`` (or ``call(probe)``, a method of ``module``) in eval mode without gradients
    (no BN statistics change), training flag restored."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return (call or module)(probe)
    finally:
        module.train(was_training)


def remove_last_downsample(module: nn.Module, probe: torch.Tensor) -> None:
    """Set the last stride-2 step of ``module`` to stride 1, so its output map is twice as large.

    The convolutions and poolings that run at the coarsest input resolution with a stride are found
    by a dry run on ``probe`` (for a ResNet: the first block of ``layer4``, both its 3×3/1×1 conv and
    its shortcut — conv or average pool). Non-overlapping pools become identities. The result is
    verified by a second dry run; architectures where this does not double the map raise.
    """
    strided: List[Tuple[nn.Module, Tuple[int, int]]] = []
    kinds = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)

    def hook(mod, inputs, _out):
        strided.append((mod, tuple(inputs[0].shape[-2:])))

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, kinds) and _pair(m.stride) != (1, 1)]
    try:
        before = dry_run(module, probe)
    finally:
        for h in handles:
            h.remove()
    if not strided:
        raise BackboneError(f"{type(module).__name__}: no strided convolution or pooling found; "
                            f"last stride 1 is not possible (set MODEL.LAST_STRIDE 2)")
    coarsest = min(size[0] * size[1] for _, size in strided)
    for mod, size in strided:
        if size[0] * size[1] != coarsest:
            continue
        if isinstance(mod, nn.Conv2d):
            mod.stride = (1, 1)
        elif _pair(mod.kernel_size) == _pair(mod.stride):
            mod.kernel_size, mod.stride, mod.padding = 1, 1, 0
        else:
            mod.stride = 1
    try:
        after = dry_run(module, probe)
    except RuntimeError as exc:
        raise BackboneError(f"{type(module).__name__}: setting the last stride to 1 breaks the network ({exc}); "
                            f"set MODEL.LAST_STRIDE 2") from exc
    if after.dim() != 4 or tuple(after.shape[-2:]) != (2 * before.shape[-2], 2 * before.shape[-1]):
        raise BackboneError(f"{type(module).__name__}: last stride 1 changed the map from "
                            f"{tuple(before.shape[-2:])} to {tuple(after.shape[-2:])} instead of doubling it; "
                            f"set MODEL.LAST_STRIDE 2")


def _pair(v) -> Tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# ----------------------------------------------------------------------------- factory
def build_backbone(name: str, pretrained: bool = False, pretrain_path: str = "",
                   last_stride: int = 1) -> Tuple[Backbone, int]:
    """Build ``name`` as a feature-map extractor; returns ``(module, channels of its last map)``.

    ``pretrained`` loads ImageNet weights from the library cache (downloading when online). A
    non-empty ``pretrain_path`` is always loaded instead (the library cache is then not used), so a
    rebuild meant to receive checkpoint weights should clear both. ``last_stride=1``
    removes the final downsampling (ResNet-like nets and others where that doubles the map).
    """
    if last_stride not in (1, 2):
        raise BackboneError(f"MODEL.LAST_STRIDE must be 1 or 2, got {last_stride!r}")
    source, arch = resolve_name(name)
    label = f"{source}:{arch}"
    body, mode = BACKBONE_SOURCES.get(source).build(arch, bool(pretrained) and not pretrain_path)
    if pretrain_path:
        _load_into(body, read_state_dict(pretrain_path), label, f"MODEL.PRETRAIN_PATH '{pretrain_path}'")
    backbone = Backbone(body, mode, label)
    probe = torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE)
    if last_stride == 1:
        remove_last_downsample(backbone, probe)
    out = dry_run(backbone, probe)
    if out.dim() != 4:
        raise BackboneError(f"backbone '{label}' returns a {out.dim()}-D tensor, not a B×C×h×w feature map")
    return backbone, int(out.shape[1])
