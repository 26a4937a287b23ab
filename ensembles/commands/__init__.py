"""The commands of ``ensemble``: one module each in this package, found by importing it.

A command module defines ``command``, a ``click.Command`` (or a ``click.Group`` for a command with
sub-commands); its name is the module's with ``_`` as ``-``. Modules whose name starts with ``_``
hold what several commands share (:mod:`._options`). Commands are thin: they parse options, call
:mod:`ensembles` functions and print; heavy imports happen inside the command.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Optional

from post_processing.registry import Registry

__all__ = ["COMMANDS"]


def _discover(name: Optional[str]) -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or (name is not None and info.name != name.replace("-", "_")):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        COMMANDS.register(info.name.replace("_", "-"), module)


COMMANDS: Registry = Registry("ensemble command", discover=_discover)
