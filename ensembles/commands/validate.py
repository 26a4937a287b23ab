"""``ensemble validate``: check a track2.txt (or another dataset's ranking file) against the dataset's lists."""
from __future__ import annotations

import click

from post_processing.submission import TOPK

from ._options import dataset_options, uses_track2


@click.command("validate")
@click.argument("track2", metavar="TRACK2|RANKING", type=click.Path(dir_okay=False))
@dataset_options
@click.option("--topk", type=click.IntRange(min=1), default=TOPK, show_default=True, help="gallery ids expected per line")
def command(track2, dataset, data_root, topk):
    """Check a track2.txt against the dataset's query and gallery lists (problems with line numbers); for
    other datasets, a ranking file (the first problem, with its line)."""
    from post_processing.ranking import read_ranking
    from post_processing.submission import SubmissionError, validate_track2

    from ..inputs import load_split_lists

    ds = load_split_lists(data_root, dataset=dataset)
    if not uses_track2(ds):
        ranking = read_ranking(track2, [r.name for r in ds.query], [r.name for r in ds.gallery])
        click.echo(f"{track2}: valid ({len(ranking)} queries x {ranking.shape[1]} gallery images of {ds.name})")
        return
    problems = validate_track2(track2, len(ds.query), len(ds.gallery), [r.name for r in ds.gallery], topk)
    if problems:
        shown = problems[:50]
        more = [f"... and {len(problems) - len(shown)} more"] if len(problems) > len(shown) else []
        raise SubmissionError([f"{track2}: {len(problems)} problem(s):", *shown, *more])
    click.echo(f"{track2}: valid ({len(ds.query)} lines x {topk} gallery ids in 1..{len(ds.gallery)})")
