"""`ensemble visualize`: a rank-list PNG of a dataset's track2.txt or of `ensemble search` results, and a CMC PNG."""
from __future__ import annotations

import os

import click

from post_processing.fileio import write_together

from ..visualize import ORDERS
from ._options import DATASET_HELP, check_outputs, uses_track2


@click.command("visualize", short_help="rank-list PNG (worst AP first) and CMC PNG of a ranking")
@click.argument("ranking", type=click.Path(dir_okay=False))
@click.option("--dataset", help=f"the dataset RANKING ranks (default aic20 at --data-root): {DATASET_HELP}")
@click.option("--data-root", type=click.Path(file_okay=False),
              help="AIC20-layout dataset with images that RANKING (a track2.txt) ranks; not for results.json")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="rank-list PNG to write")
@click.option("--cmc-out", type=click.Path(dir_okay=False), help="CMC plot PNG to write (needs ground truth)")
@click.option("--metrics", type=click.Path(dir_okay=False),
              help="fuse --metrics-out JSON: plot the CMC of every model, the fusion and each step")
@click.option("--queries", type=click.IntRange(min=1), default=8, show_default=True, help="queries shown")
@click.option("--order", type=click.Choice(ORDERS),
              help="which queries: lowest AP first (default with ground truth), highest first, or spread from "
                   "the worst AP to the best (without ground truth: evenly over the list, the default)")
@click.option("--query", "query_names", multiple=True,
              help="show this query (its file name; repeat for several, drawn in that order) instead of --order")
@click.option("--topk", type=click.IntRange(min=1), default=10, show_default=True, help="gallery images per query")
def command(ranking, dataset, data_root, out, cmc_out, metrics, queries, order, query_names, topk):
    """Draw queries with their top-k (green/red borders for right/wrong identity, each query's AP) and a CMC plot.

    RANKING is a track2.txt of the dataset at --data-root, another --dataset's ranking file (`ensemble fuse
    --out`), or the results.json `ensemble search` wrote.
    """
    from ..plots import cmc_plot
    from ..visualize import (cmc_curves, ranklist_grid, read_ranking, read_results, select_queries,
                             view_of_ranking, view_of_results)

    if metrics and not cmc_out:
        raise click.UsageError("--metrics gives the curves of the CMC plot; add --cmc-out")
    if order and query_names:
        raise click.UsageError("--query picks the queries; do not combine it with --order")
    check_outputs(("--out", out), ("--cmc-out", cmc_out))
    if ranking.endswith(".json"):
        if data_root or dataset or cmc_out:
            raise click.UsageError(f"{ranking} holds search results (paths and identities): --dataset, --data-root "
                                   f"and --cmc-out are for a track2.txt or ranking file")
        view, ranked, curves = view_of_results(read_results(ranking), ranking), None, None
    else:
        if not data_root and not dataset:
            raise click.UsageError(f"{ranking} is a track2.txt or ranking file: give --dataset or --data-root "
                                   f"(the dataset it ranks)")
        from post_processing.ranking import read_ranking as read_ranking_file

        from ..inputs import DATASET, labels_of, load_split_lists

        ds = load_split_lists(data_root, dataset=dataset or DATASET)
        labels = labels_of(ds)
        if uses_track2(ds):
            ranked = read_ranking(ranking, len(ds.query), [r.name for r in ds.gallery], ds.root)
        else:
            ranked = read_ranking_file(ranking, [r.name for r in ds.query], [r.name for r in ds.gallery])
        view = view_of_ranking(ds.query, ds.gallery, ranked, labels)
        curves = cmc_curves(ranking, ranked, labels, metrics) if cmc_out else None
    rows = select_queries(view, queries, order, query_names)
    with write_together():
        ranklist_grid(out, view, rows, topk)
        if cmc_out:
            cmc_plot(cmc_out, curves, title=f"CMC ({os.path.basename(ds.root.rstrip('/'))})")
    how = "as named" if query_names else {"worst": "worst AP first", "best": "best AP first",
                                          "spread": "worst to best AP" if view.has_ap else "spread over the list"}[
        order or ("worst" if view.has_ap else "spread")]
    click.echo(f"wrote {out} ({len(rows)} queries x top-{min(topk, view.ranking.shape[1])}, {how})")
    if cmc_out:
        click.echo(f"wrote {cmc_out}")
