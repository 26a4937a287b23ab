"""The commands of ``python -m global_model``: one module each in this package, found by importing it.

A command module defines ``command``, a ``click.Command``; its name is the module's with ``_`` as
``-`` (``make_lr.py`` is ``make-lr``). Command modules import heavy libraries (torch) inside the
command only, so ``--help`` stays fast. They are the only modules that parse arguments; library code
never imports them. Commands that build a model from a config end with :func:`run_options`.
"""
from __future__ import annotations

from typing import Tuple

import click

from post_processing.registry import Registry, module_registry

__all__ = ["COMMANDS", "OVERRIDES", "checkpoint_option", "run_options"]

COMMANDS: Registry = module_registry("command", __name__)

# Context of commands taking trailing KEY VALUE overrides: a value may look like an option (-1, -0.5).
OVERRIDES = {"ignore_unknown_options": True}


def _check_overrides(ctx: click.Context, param: click.Parameter, opts: Tuple[str, ...]) -> Tuple[str, ...]:
    """``KEY VALUE`` pairs: a key that looks like an option is a mistyped option, not a config key."""
    for key in opts[::2]:
        if key.startswith("-"):
            raise click.UsageError(f"no such option: {key} (options go anywhere; KEY VALUE overrides are "
                                   f"config keys such as SOLVER.MAX_EPOCHS 2)", ctx)
    if len(opts) % 2:
        raise click.UsageError(f"config override {opts[-1]} has no value: overrides are KEY VALUE pairs", ctx)
    return opts


def run_options(example: str):
    """The options every torch command ends with: ``--no-progress`` and trailing ``KEY VALUE`` overrides
    (use with ``context_settings=OVERRIDES``)."""
    def decorate(func):
        func = click.argument("opts", nargs=-1, type=click.UNPROCESSED, metavar="[KEY VALUE]...",
                              callback=_check_overrides)(func)
        return click.option("--no-progress", is_flag=True,
                            help=f"no progress bars; KEY VALUE pairs after the options override the config, "
                                 f"e.g. {example}")(func)
    return decorate


def checkpoint_option(help: str, required: bool = True):
    """``--checkpoint PATH``: a model file written by ``train`` (the one name for it in both CLIs)."""
    return click.option("--checkpoint", required=required, type=click.Path(dir_okay=False), help=help)
