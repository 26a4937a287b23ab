"""``ensemble visualize``: rank lists and CMC curves of a submission."""
from __future__ import annotations

import os

import click

from post_processing.fileio import write_together

from ._options import check_outputs


@click.command("visualize")
@click.argument("track2", type=click.Path(dir_okay=False))
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="AIC20-layout dataset with images")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="rank-list PNG to write")
@click.option("--cmc-out", type=click.Path(dir_okay=False), help="CMC plot PNG to write (needs ground truth)")
@click.option("--metrics", type=click.Path(dir_okay=False),
              help="fuse --metrics-out JSON: plot the CMC of every model, the fusion and each step")
@click.option("--queries", type=click.IntRange(min=1), default=8, show_default=True,
              help="queries shown (evenly spread)")
@click.option("--topk", type=click.IntRange(min=1), default=10, show_default=True, help="gallery images per query")
def command(track2, data_root, out, cmc_out, metrics, queries, topk):
    """Draw each query's top-k (green/red borders for right/wrong with ground truth) and a CMC plot."""
    from ..inputs import labels_of, load_split_lists
    from ..visualize import cmc_curves, cmc_plot, ranklist_grid, read_ranking, spread_rows

    if metrics and not cmc_out:
        raise click.UsageError("--metrics gives the curves of the CMC plot; add --cmc-out")
    check_outputs(("--out", out), ("--cmc-out", cmc_out))
    ds = load_split_lists(data_root)
    labels = labels_of(ds)
    ranking = read_ranking(track2, len(ds.query), [r.name for r in ds.gallery], data_root)
    rows = spread_rows(queries, len(ranking))
    gt = (labels.q_pids, labels.g_pids) if labels.has_gt else (None, None)
    curves = cmc_curves(track2, ranking, labels, metrics) if cmc_out else None
    with write_together():
        ranklist_grid(out, [r.path for r in ds.query], [r.path for r in ds.gallery], ranking, rows, topk, *gt)
        if cmc_out:
            cmc_plot(cmc_out, curves, title=f"CMC ({os.path.basename(data_root.rstrip('/'))})")
    click.echo(f"wrote {out} ({len(rows)} queries x top-{min(topk, ranking.shape[1])})")
    if cmc_out:
        click.echo(f"wrote {cmc_out}")
