"""``python -m global_model make-lr --src DIR --out DIR --scale S``: low-resolution copies of a folder of images."""
from __future__ import annotations

import click


@click.command(short_help="write low-resolution copies of a folder of images (same tree and names)")
@click.option("--src", required=True, type=click.Path(file_okay=False), help="folder of images (searched recursively)")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="output folder (not inside --src): the same tree and file names; other files are copied")
@click.option("--scale", required=True, type=float, help="shrink factor, e.g. 2 or 4 (>= 1)")
@click.option("--keep-small", is_flag=True,
              help="keep the shrunk size instead of enlarging back to the exact original size")
def command(src, out, scale, keep_small) -> int:
    """Shrink every image by --scale with antialiased bicubic resampling, then (unless --keep-small) enlarge
    it back to its exact size with bicubic: the degradation TEST.LR_SCALE and INPUT.LR_SCALES apply."""
    from ..data.lowres import make_lr_folder  # OpenCV: imported only when the command runs

    summary = make_lr_folder(src, out, scale, keep_small=keep_small)
    size = "shrunk size" if keep_small else "original size"
    click.echo(f"wrote {summary['images']} images x{summary['scale']:g} ({size}) to {summary['out']} "
               f"({summary['copied']} other files copied) in {summary['seconds']} s")
    return 0
