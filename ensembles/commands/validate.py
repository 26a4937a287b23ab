"""``ensemble validate``: check a track2.txt against the dataset's lists."""
from __future__ import annotations

import click

from post_processing.submission import TOPK


@click.command("validate")
@click.argument("track2", type=click.Path(dir_okay=False))
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="AIC20-layout dataset")
@click.option("--topk", type=click.IntRange(min=1), default=TOPK, show_default=True, help="gallery ids expected per line")
def command(track2, data_root, topk):
    """Check a track2.txt against the dataset's query and gallery lists (problems with line numbers)."""
    from post_processing.submission import SubmissionError, validate_track2

    from ..inputs import load_split_lists

    ds = load_split_lists(data_root)
    problems = validate_track2(track2, len(ds.query), len(ds.gallery), [r.name for r in ds.gallery], topk)
    if problems:
        shown = problems[:50]
        more = [f"... and {len(problems) - len(shown)} more"] if len(problems) > len(shown) else []
        raise SubmissionError([f"{track2}: {len(problems)} problem(s):", *shown, *more])
    click.echo(f"{track2}: valid ({len(ds.query)} lines x {topk} gallery ids in 1..{len(ds.gallery)})")
