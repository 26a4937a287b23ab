"""``python -m global_model san-panels --checkpoint CKPT --src DIR --out DIR [--targets DIR]``: SAN panels."""
import click

from . import OVERRIDES, checkpoint_option, run_options


@click.command(context_settings=OVERRIDES, short_help="write input | target | decoded panels with a SAN checkpoint")
@checkpoint_option("checkpoint written by the SAN trainer (model_final.pth, best.pth or last.pth)")
@click.option("--src", required=True, type=click.Path(file_okay=False), help="folder of images")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="output folder: one <stem>.png per image")
@click.option("--targets", default=None, type=click.Path(file_okay=False),
              help="folder of targets with the images' names (any image extension), e.g. the synthetic "
                   "benchmark's san_targets/image_train; without it the target column is grey")
@run_options("INPUT.SIZE_TEST [256,128] TEST.IMS_PER_BATCH 16")
def command(checkpoint, src, out, targets, no_progress, opts) -> int:
    """Write input | target | decoded panels of a folder's images with a SAN checkpoint."""
    from ..san.panels import write_panels

    n, with_target = write_panels(checkpoint, src, out, targets, list(opts), progress=not no_progress)
    click.echo(f"wrote {n} panel(s) to {out} ({with_target} with a target)")
    return 0
