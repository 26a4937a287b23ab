"""``python -m global_model synth``: generate the synthetic foggy-vehicle benchmark (AIC20 layout + FVRID view)."""
from __future__ import annotations

import os

import click


@click.command(short_help="generate the synthetic foggy-vehicle benchmark (AIC20 layout)")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="output folder (AIC20 layout + fvrid/)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of everything generated")
@click.option("--ids", type=int, default=240, show_default=True, help="identities, train + test")
@click.option("--test-ids", type=int, default=None, help="of which test identities (default: half)")
@click.option("--size", type=int, nargs=2, default=(96, 128), show_default=True, metavar="H W", help="image size")
@click.option("--cameras", type=int, default=6, show_default=True, help="cameras of the AIC20-layout scene")
@click.option("--real-ids", type=int, default=None,
              help="identities of the FVRID_real view (default max(4, ids // 4); 0 = none)")
@click.option("--workers", type=int, default=min(4, os.cpu_count() or 1), show_default=True,
              help="rendering processes (the output does not depend on it)")
@click.option("--force", is_flag=True,
              help="write into a non-empty folder that is not an earlier synth output (its image folders, "
                   "name lists and labels are replaced)")
def command(out, seed, ids, test_ids, size, cameras, real_ids, workers, force) -> int:
    """Generate the synthetic foggy-vehicle benchmark: AIC20 layout with ground truth, plus an FVRID view."""
    from global_model.data.synth import format_summary, generate  # OpenCV: imported only when the command runs

    summary = generate(out, seed=seed, ids=ids, size=tuple(size), cameras=cameras, real_ids=real_ids,
                       workers=max(1, workers), test_ids=test_ids, force=force)
    click.echo(format_summary(summary, os.path.abspath(out)))
    return 0
