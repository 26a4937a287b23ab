"""``python -m global_model <command>`` (and its alias ``python -m mgn_model``): one argparse front end.

The commands are the modules of :mod:`global_model.commands`; only the chosen one runs its heavy
imports. One error policy for every command: a project error (:class:`post_processing.errors.ReidError`)
prints ``error: <message>`` on stderr and exits 1 (2 for a usage error, as argparse does); any
other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from post_processing.errors import EXIT_USAGE, ReidError, exit_code

from .commands import COMMANDS


def main(argv: Optional[Sequence[str]] = None, prog: str = "global_model") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = COMMANDS.names()
    parser = argparse.ArgumentParser(prog=f"python -m {prog}")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(names) + "}")
    for name in names:
        sub.add_parser(name, help=COMMANDS.get(name).HELP, add_help=False)
    if not argv or argv[0] not in names:
        parser.parse_args(argv)  # prints usage / the error for an unknown command and exits 2
        parser.print_help()
        return EXIT_USAGE
    command = COMMANDS.get(argv[0])
    cmd_parser = argparse.ArgumentParser(prog=f"python -m {prog} {argv[0]}", description=command.HELP)
    command.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    try:
        return int(command.run(args) or 0)
    except ReidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
