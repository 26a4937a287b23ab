"""``ensemble steps``: list the post-processing steps and their keys."""
from __future__ import annotations

import click


@click.command("steps")
def command():
    """List the pipeline steps with their stage, keys, types and defaults (for pipeline YAML files)."""
    from ..pipeline import STAGE_NAMES, STEPS, canonical_order

    for name in canonical_order():
        spec = STEPS.get(name)
        click.echo(f"{name}  [{STAGE_NAMES[spec.stage]}]  {spec.help}")
        for key, param in spec.params.items():
            default = "required" if param.required else f"default {param.default!r}"
            grid = f" (tune tries {', '.join(map(str, param.grid))})" if param.grid is not None else ""
            click.echo(f"    {key}: {param.describe()}, {default} - {param.help}{grid}")
