"""`ensemble plot`: t-SNE of a model's features coloured by identity, distance histograms and ROC."""
from __future__ import annotations

import click

from post_processing.distance import METRICS
from post_processing.fileio import write_together

from ..plots import PlotError
from ._options import check_outputs


@click.command("plot", short_help="t-SNE by identity, distance histograms and ROC of features")
@click.option("--features-dir", required=True, type=click.Path(file_okay=False),
              help="folder with query_<model>.pkl / gallery_<model>.pkl (or .npz)")
@click.option("--model", required=True, help="the model whose features are plotted")
@click.option("--data-root", required=True, type=click.Path(file_okay=False),
              help="AIC20-layout dataset with ground truth (query_label.xml, test_label.xml)")
@click.option("--tsne-out", type=click.Path(dir_okay=False),
              help="t-SNE PNG to write (query and gallery, coloured by identity)")
@click.option("--hist-out", type=click.Path(dir_okay=False),
              help="PNG to write: distance histograms of same-identity and different-identity query-gallery pairs")
@click.option("--roc-out", type=click.Path(dir_okay=False), help="ROC PNG to write (query-gallery pairs by distance)")
@click.option("--tsne-ids", type=click.IntRange(min=2), default=20, show_default=True,
              help="identities in the t-SNE (those with the most images)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the t-SNE")
@click.option("--distance", type=click.Choice(METRICS), default="euclidean", show_default=True,
              help="distance of the histograms and the ROC")
def command(features_dir, model, data_root, tsne_out, hist_out, roc_out, tsne_ids, seed, distance):
    """Pictures of a feature space: t-SNE by identity, positive/negative distance histograms, ROC."""
    from ..inputs import load_inputs
    from ..plots import histogram_plot, pair_distances, roc_plot, stack_sides, tsne_plot

    if not (tsne_out or hist_out or roc_out):
        raise click.UsageError("nothing to draw: give --tsne-out, --hist-out and/or --roc-out")
    check_outputs(("--tsne-out", tsne_out), ("--hist-out", hist_out), ("--roc-out", roc_out))
    inputs = load_inputs(features_dir, data_root, [model])
    lab = inputs.labels
    if not lab.has_gt:
        raise PlotError(f"{data_root}: no ground truth (query_label.xml and test_label.xml): the pictures "
                        f"need identities")
    qf, gf = inputs.feats["query"][model], inputs.feats["gallery"][model]
    with write_together():
        if tsne_out:
            shown = tsne_plot(tsne_out, *stack_sides(qf, gf, lab.q_pids, lab.g_pids), max_ids=tsne_ids, seed=seed,
                              title=f"t-SNE of {model}")
        if hist_out or roc_out:
            pos, neg = pair_distances(qf, gf, lab.q_pids, lab.g_pids, lab.q_camids, lab.g_camids, distance)
            if hist_out:
                histogram_plot(hist_out, pos, neg, distance, title=f"{model}: query-gallery distances")
            if roc_out:
                area = roc_plot(roc_out, pos, neg, title=f"{model}: ROC of query-gallery pairs")
    if tsne_out:
        click.echo(f"wrote {tsne_out} ({shown[0]} images of {shown[1]} identities)")
    if hist_out:
        click.echo(f"wrote {hist_out} ({len(pos)} positive, {len(neg)} negative pairs)")
    if roc_out:
        click.echo(f"wrote {roc_out} (AUC {area:.4f})")
