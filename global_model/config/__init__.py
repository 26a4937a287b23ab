"""Configuration: yacs defaults plus YAML files and ``KEY VALUE`` overrides, with helpful errors.

``load_config(path, opts)`` merges the defaults, the file (and the files it names in ``_BASE_``,
fast-reid style, relative to the file) and then the command-line pairs. A key that does not
exist, or a value of the wrong type, raises :class:`ConfigError` naming the key, where it came
from and the closest valid keys, instead of yacs' bare ``KeyError``.
"""
from __future__ import annotations

import difflib
import os
from typing import Any, Iterable, List, Optional, Sequence

import yaml
from yacs.config import CfgNode

from post_processing.errors import ReidUsageError
from post_processing.registry import Registry, import_submodules

from ..families import discover_family
from .defaults import get_core_cfg

__all__ = ["CONFIG_EXTENSIONS", "ConfigError", "add_config", "get_cfg", "load_config", "load_config_string",
           "merge_opts", "save_config"]

def _discover(name: Optional[str]) -> None:
    discover_family(name)
    if name is None:  # shared extensions (e.g. a loss term's keys) sit beside the loss terms
        import_submodules("global_model.modeling")


# name -> fn(cfg) adding keys (fast-reid's add_*_config): a family's (name = its MODEL.META_ARCH),
# applied to that family's configs, or a shared one (e.g. a loss term's weight), applied to all.
CONFIG_EXTENSIONS: Registry = Registry("config extension", discover=_discover)
_SHARED: set = set()


def add_config(name: str, shared: bool = False):
    """Decorator: ``fn(cfg)`` adds keys to the core defaults (in place): those of the family whose
    ``MODEL.META_ARCH`` is ``name``, or, with ``shared=True``, keys every config has (a loss term's
    ``LOSS.*`` weight and options, registered beside the term)."""
    def deco(fn):
        CONFIG_EXTENSIONS.register(name, fn)
        if shared:
            _SHARED.add(name)
        return fn

    return deco


def get_cfg(meta_arch: Optional[str] = None) -> CfgNode:
    """The core defaults and shared extensions, plus the keys of family ``meta_arch`` (which becomes
    ``MODEL.META_ARCH``)."""
    cfg = get_core_cfg()
    for name, extend in CONFIG_EXTENSIONS.items():
        if name in _SHARED:
            extend(cfg)
    if meta_arch:
        cfg.MODEL.META_ARCH = meta_arch
        extend = CONFIG_EXTENSIONS.find(meta_arch)
        if extend is not None and meta_arch not in _SHARED:
            extend(cfg)
    return cfg


def _meta_arch_of(mapping: dict) -> Optional[str]:
    model = mapping.get("MODEL")
    arch = model.get("META_ARCH") if isinstance(model, dict) else None
    return arch if isinstance(arch, str) else None


def _opts_meta_arch(opts: Sequence[str]) -> Optional[str]:
    opts = list(opts or [])
    for key, raw in zip(opts[0::2], opts[1::2]):
        if key == "MODEL.META_ARCH" and isinstance(raw, str):
            return raw
    return None


def _file_meta_arch(path: str, seen: Sequence[str] = ()) -> Optional[str]:
    """``MODEL.META_ARCH`` as the file and its ``_BASE_`` chain set it (the file wins over its bases)."""
    real = os.path.realpath(path)
    if real in seen:
        return None  # _merge_file reports the loop
    data = _read_yaml(path)
    arch = _meta_arch_of(data)
    if arch is not None:
        return arch
    bases = data.get(BASE_KEY, [])
    for base in reversed([bases] if isinstance(bases, str) else list(bases)):
        base_path = base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base)
        arch = _file_meta_arch(base_path, tuple(seen) + (real,))
        if arch is not None:
            return arch
    return None

BASE_KEY = "_BASE_"


class ConfigError(ReidUsageError, ValueError):
    """A config file or override that does not fit the defaults (unknown key, wrong type, bad syntax)."""


def _all_keys(node: CfgNode, prefix: str = "") -> List[str]:
    keys = []
    for k, v in node.items():
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(v, CfgNode):
            keys.extend(_all_keys(v, full + "."))
    return keys


def _unknown_key(cfg: CfgNode, full_key: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(full_key, _all_keys(cfg), n=3, cutoff=0.5)
    hint = f"; closest valid keys: {', '.join(close)}" if close else ""
    return ConfigError(f"{source}: unknown config key {full_key!r}{hint}")


def _coerce(value: Any, default: Any, full_key: str, source: str) -> Any:
    """``value`` converted to the type of ``default``, or a ConfigError saying what was expected."""
    if isinstance(default, CfgNode):
        raise ConfigError(f"{source}: {full_key!r} is a section (keys {', '.join(default.keys())}), "
                          f"not a value; got {value!r}")
    if isinstance(value, dict):
        raise ConfigError(f"{source}: {full_key!r} expects a {type(default).__name__}, got a mapping {value!r}")
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
    elif isinstance(default, float) and isinstance(value, int):
        return float(value)
    elif isinstance(default, (list, tuple)):
        if isinstance(value, str) and all(isinstance(d, str) for d in default):
            value = [value]  # `DATASETS.TRAIN aic20` means a one-element list
        if isinstance(value, (list, tuple)):
            return type(default)(value)
    elif isinstance(value, type(default)):
        return value
    raise ConfigError(f"{source}: {full_key!r} expects a {type(default).__name__} like {default!r}, "
                      f"got {type(value).__name__} {value!r}")


def _set(cfg: CfgNode, full_key: str, value: Any, source: str) -> None:
    node = cfg
    parts = full_key.split(".")
    for part in parts[:-1]:
        if not isinstance(node, CfgNode) or part not in node:
            raise _unknown_key(cfg, full_key, source)
        node = node[part]
    if not isinstance(node, CfgNode) or parts[-1] not in node:
        raise _unknown_key(cfg, full_key, source)
    node[parts[-1]] = _coerce(value, node[parts[-1]], full_key, source)


def _flatten(mapping: dict, source: str, prefix: str = "") -> Iterable[tuple]:
    for k, v in mapping.items():
        if not isinstance(k, str):
            raise ConfigError(f"{source}: config keys must be strings, got {k!r}")
        if isinstance(v, dict):
            yield from _flatten(v, source, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _merge_mapping(cfg: CfgNode, mapping: dict, source: str) -> None:
    for full_key, value in _flatten(mapping, source):
        _set(cfg, full_key, value, source)


def _read_yaml(path: str) -> dict:
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text YAML config (byte {exc.start} is not UTF-8; a binary file, e.g. a "
                          f"checkpoint, given as --config?)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys, got {type(data).__name__}")
    return data


def _merge_file(cfg: CfgNode, path: str, seen: Sequence[str] = ()) -> None:
    real = os.path.realpath(path)
    if real in seen:
        raise ConfigError(f"{path}: {BASE_KEY} chain loops back to itself ({' -> '.join(seen)})")
    data = _read_yaml(path)
    bases = data.pop(BASE_KEY, [])
    for base in [bases] if isinstance(bases, str) else bases:
        base_path = base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base)
        _merge_file(cfg, base_path, tuple(seen) + (real,))
    _merge_mapping(cfg, data, path)


def merge_opts(cfg: CfgNode, opts: Sequence[str], source: str = "command line") -> CfgNode:
    """Apply ``KEY VALUE`` pairs (values parsed like Python literals, else kept as strings)."""
    opts = list(opts or [])
    if len(opts) % 2:
        raise ConfigError(f"{source}: overrides must be KEY VALUE pairs; {opts[-1]!r} has no value")
    for key, raw in zip(opts[0::2], opts[1::2]):
        value = CfgNode._decode_cfg_value(raw) if isinstance(raw, str) else raw
        _set(cfg, key, value, source)
    return cfg


def load_config(path: Optional[str] = None, opts: Sequence[str] = ()) -> CfgNode:
    """Defaults (with the keys of the family ``MODEL.META_ARCH`` names), then ``path`` (with its
    ``_BASE_`` files), then ``opts``; returned frozen."""
    cfg = get_cfg(_opts_meta_arch(opts) or (_file_meta_arch(path) if path else None))
    if path:
        _merge_file(cfg, path)
    merge_opts(cfg, opts)
    cfg.freeze()
    return cfg


def load_config_string(text: str, opts: Sequence[str] = (), source: str = "stored config") -> CfgNode:
    """A config dumped by :func:`save_config` (e.g. the one stored in a checkpoint), plus ``opts``."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    cfg = get_cfg(_opts_meta_arch(opts) or _meta_arch_of(data))
    _merge_mapping(cfg, _upgrade_family_sections(data, cfg), source)
    merge_opts(cfg, opts)
    cfg.freeze()
    return cfg


def _upgrade_family_sections(data: dict, cfg: CfgNode) -> dict:
    """A stored config with its family sections where ``cfg`` (the defaults) has them.

    Checkpoints written before the families owned their keys store every family's section in the
    core layout (``MODEL.MGN`` and ``MODEL.SJDL`` in every config, SJDL's training keys as a
    top-level ``SJDL``). A section named after another family that the defaults lack is dropped
    (its model never read it); a top-level section of the config's own family moves under ``MODEL``.
    """
    family = cfg.MODEL.META_ARCH.upper()
    model = data.get("MODEL", {})
    if not isinstance(model, dict):
        return data  # merging reports it

    def keep(key: str, value: Any, defaults: CfgNode) -> bool:
        return not (isinstance(value, dict) and key not in defaults and key != family
                    and CONFIG_EXTENSIONS.find(key.lower()) is not None)

    upgraded = {k: v for k, v in data.items() if keep(k, v, cfg)}
    if isinstance(upgraded.get(family), dict) and family not in cfg and family in cfg.MODEL:
        model = {**model, family: {**model.get(family, {}), **upgraded.pop(family)}}
    upgraded["MODEL"] = {k: v for k, v in model.items() if keep(k, v, cfg.MODEL)}
    return upgraded


def save_config(cfg: CfgNode, path: str) -> None:
    """Write the full config (every key) atomically, so a run can be reproduced from it."""
    from post_processing.fileio import atomic_write

    with atomic_write(path, "w") as f:
        f.write(cfg.dump())
