"""The commands of ``python -m global_model``: one module each in this package, found by importing it.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
its name is the module's with ``_`` as ``-`` (``make_lr.py`` is ``make-lr``). Command modules
import heavy libraries (torch) inside ``run`` only, so ``--help`` stays fast. They are the only
modules that parse arguments; library code never imports them.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
from typing import Optional

from post_processing.registry import Registry

__all__ = ["COMMANDS", "add_run_options"]


def _discover(name: Optional[str]) -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or (name is not None and info.name != name.replace("-", "_")):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        COMMANDS.register(info.name.replace("_", "-"), module)


COMMANDS: Registry = Registry("command", discover=_discover)


def add_run_options(parser: argparse.ArgumentParser, example: str) -> None:
    """The options every torch command ends with: ``--no-progress`` and trailing ``KEY VALUE`` overrides."""
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help=f"config overrides, e.g. {example}")
