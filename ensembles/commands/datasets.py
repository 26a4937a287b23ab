"""``ensemble datasets``: the dataset loaders a ``--dataset`` entry can name."""
from __future__ import annotations

import click


@click.command("datasets")
def command():
    """List every dataset loader --dataset can name, with its layout, evaluation protocol and options."""
    from global_model.data.datasets import loader_table

    click.echo(loader_table())
