"""``ensemble evaluate``: score a track2.txt against ground truth."""
from __future__ import annotations

import os

import click

from post_processing.submission import TOPK

from ._options import check_outputs


@click.command("evaluate")
@click.argument("track2", type=click.Path(dir_okay=False))
@click.option("--data-root", required=True, type=click.Path(file_okay=False),
              help="AIC20-layout dataset with query_label.xml and test_label.xml")
@click.option("--topk", type=click.IntRange(min=1), default=TOPK, show_default=True)
@click.option("--json-out", type=click.Path(dir_okay=False), help="also write the scores as JSON")
def command(track2, data_root, topk, json_out):
    """Score a track2.txt against ground truth (mAP, AIC mAP@100, rank-1/5/10, mINP)."""
    import numpy as np

    from post_processing.submission import SubmissionError, read_track2, validate_track2

    from ..inputs import labels_of, load_split_lists
    from ..report import ScoreError, format_table, score, write_json

    check_outputs(("--json-out", json_out))
    ds = load_split_lists(data_root)
    labels = labels_of(ds)
    if not labels.has_gt:
        raise ScoreError(f"{data_root}: no ground truth (query_label.xml and test_label.xml) to score against")
    names = [r.name for r in ds.gallery]
    problems = validate_track2(track2, len(ds.query), len(ds.gallery), names, topk)
    if problems:
        raise SubmissionError([f"{track2}: not a valid submission:", *problems[:20]])
    scores = score(np.asarray(read_track2(track2, names), dtype=np.int64), labels, topk)
    click.echo(format_table([(os.path.basename(track2), scores)]))
    if json_out:
        write_json(json_out, scores)
        click.echo(f"wrote {json_out}")
