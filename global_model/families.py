"""Where model families are found: no list of them is kept anywhere.

A family (SJDL, MGN, ...) is a package that registers its architecture, trainer and config
extension when imported: ``global_model.<name>`` (e.g. ``global_model/sjdl/``), a top-level
``<name>_model`` package (``mgn_model``), or a module of the ``reid_ensemble.plugins`` entry-point
group. The architecture, trainer and config-extension registries all discover with
:func:`discover_family`, so ``MODEL.META_ARCH: sjdl`` imports ``global_model.sjdl`` on demand.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import List, Optional

__all__ = ["CORE_PACKAGES", "discover_family", "family_modules"]

# Subpackages of global_model that are the shared core, not families.
CORE_PACKAGES = frozenset({"commands", "config", "configs", "data", "engine", "modeling"})


def family_modules(name: str) -> List[str]:
    """The modules that may define family ``name``, in the order they are tried."""
    return [f"global_model.{name}", f"{name}_model"]


def _try_import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # absent is fine; a family whose own imports fail must say so
            raise


def _all_family_modules() -> List[str]:
    import global_model

    found = [f"global_model.{m.name}" for m in pkgutil.iter_modules(global_model.__path__)
             if m.ispkg and m.name not in CORE_PACKAGES and not m.name.startswith("_")]
    found += [m.name for m in pkgutil.iter_modules() if m.ispkg and m.name.endswith("_model")]
    return found


def discover_family(name: Optional[str]) -> None:
    """Import the package(s) that can register family ``name``; every family when ``name`` is None."""
    if name is not None and not name.isidentifier():
        return
    for module in family_modules(name) if name is not None else _all_family_modules():
        _try_import(module)
