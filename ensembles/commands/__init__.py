"""The commands of ``ensemble``: one module each in this package, found by importing it.

A command module defines ``command``, a ``click.Command`` (or a ``click.Group`` for a command with
sub-commands); its name is the module's with ``_`` as ``-``. Modules whose name starts with ``_``
hold what several commands share (:mod:`._options`). Commands are thin: they parse options, call
:mod:`ensembles` functions and print; heavy imports happen inside the command.
"""
from __future__ import annotations


from post_processing.registry import Registry, module_registry

__all__ = ["COMMANDS"]

COMMANDS: Registry = module_registry("ensemble command", __name__)
