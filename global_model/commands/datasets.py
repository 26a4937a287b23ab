"""``python -m global_model datasets``: every registered dataset loader with its layout, protocol and options."""
from __future__ import annotations

import click


@click.command(short_help="list the dataset loaders: layout, evaluation protocol, options")
def command() -> int:
    """List every registered dataset loader with its folder layout, evaluation protocol and options (the
    keys of a DATASETS entry such as cuhk03(variant=labeled, protocol=classic, split=3)=data/cuhk03)."""
    from ..data.datasets import loader_table

    click.echo(loader_table())
    return 0
