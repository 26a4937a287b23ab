"""``ensemble evaluate``: score a track2.txt (AIC20) or a ranking file (other datasets) against ground truth."""
from __future__ import annotations

import os

import click

from post_processing.submission import TOPK

from ._options import check_outputs, dataset_options, read_result


@click.command("evaluate")
@click.argument("track2", metavar="TRACK2|RANKING", type=click.Path(dir_okay=False))
@dataset_options
@click.option("--topk", type=click.IntRange(min=1), default=TOPK, show_default=True,
              help="gallery ids per track2.txt line scored (AIC mAP@K; a ranking file's K is its own)")
@click.option("--json-out", type=click.Path(dir_okay=False), help="also write the scores as JSON")
def command(track2, dataset, data_root, topk, json_out):
    """Score a track2.txt or a ranking file against ground truth under the dataset's protocol (mAP, AIC
    mAP@K, rank-1/5/10, mINP): the numbers `ensemble fuse --metrics-out` wrote for it."""
    from post_processing.ranking import RankingError

    from ..inputs import dataset_notes, labels_of, load_split_lists, ranking_scope
    from ..report import ScoreError, format_table, score, write_json

    check_outputs(("--json-out", json_out))
    ds = load_split_lists(data_root, dataset=dataset)
    labels = labels_of(ds)
    if not labels.has_gt:
        raise ScoreError(f"{ds.root}: no ground truth (AIC20: query_label.xml and test_label.xml; others: the "
                         f"query ids) to score against")
    scope = ranking_scope(ds)
    try:
        ranking, k = read_result(track2, ds, topk)
    except RankingError as exc:
        if not scope:
            raise
        raise RankingError(f"{exc} (a {ds.name} ranking file ranks one draw: give the --dataset entry it was "
                           f"written for, which its '# ranks' line names)") from None
    scores = score(ranking, labels, k)
    click.echo(f"protocol: {ds.protocol_label}")
    if scope:
        click.echo(f"scored: {scope}")
    for note in dataset_notes(ds):
        click.echo(f"note: {note}")
    click.echo(format_table([(os.path.basename(track2), scores)]))
    if json_out:
        write_json(json_out, {**scores, "ranks": scope} if scope else scores)
        click.echo(f"wrote {json_out}")
