"""``python -m global_model <command>`` (and its alias ``python -m mgn_model``) and the click machinery
both CLIs share.

Both front ends (this one and ``ensemble``) are click groups whose commands are the modules of a
package, found through a :class:`~post_processing.registry.Registry` and imported only when listed or
run (:class:`RegistryGroup`); a command module defines ``command``, a ``click.Command``, and imports
heavy libraries (torch) inside it. One error policy for every command: a project error
(:class:`post_processing.errors.ReidError`) prints ``error: <message>`` on stderr and exits 1 (2 for
a usage error, like click's own usage errors); any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import sys
from importlib import metadata
from typing import List, Optional, Sequence

import click

from post_processing.errors import EXIT_USAGE, ReidError, exit_code
from post_processing.registry import Registry

from .commands import COMMANDS


def package_version() -> str:
    """The installed reid-ensemble version (``unknown`` when run from a checkout that is not installed)."""
    try:
        return metadata.version("reid-ensemble")
    except metadata.PackageNotFoundError:
        return "unknown"


class RegistryGroup(click.Group):
    """A click group whose commands are the ``command`` attributes of a registry's modules.

    ``list_commands`` imports every command module (they are light: torch is imported inside the
    commands); ``get_command`` imports only the one asked for. Project errors become one line and an
    exit status.
    """

    def __init__(self, *args, registry: Registry, **kwargs):
        super().__init__(*args, **kwargs)
        self.registry = registry

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.registry.names()))

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        module = self.registry.find(name)
        return getattr(module, "command", None) if module is not None else None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ReidError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exit_code(exc))


@click.group(cls=RegistryGroup, registry=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_version(), "--version", prog_name="reid-ensemble")
def cli():
    """Train ReID models, extract their features, defog, and generate the synthetic benchmark."""


def main(argv: Optional[Sequence[str]] = None, prog: str = "global_model") -> int:
    """Run a command; returns the exit status (0, 1 for a project error, 2 for a usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = f"python -m {prog}"
    if not argv:
        with click.Context(cli, info_name=name) as ctx:
            click.echo(cli.get_help(ctx))
        return EXIT_USAGE
    try:
        return int(cli.main(args=argv, prog_name=name, standalone_mode=False) or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
