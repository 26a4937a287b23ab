"""``python -m global_model defog --checkpoint CKPT --src DIR --out DIR``: defog a folder with the translator
of a family that has one (SJDL, RVSL)."""
import click

from . import OVERRIDES, checkpoint_option, run_options


@click.command(context_settings=OVERRIDES, short_help="write defogged images with an SJDL or RVSL checkpoint")
@checkpoint_option("checkpoint written by the SJDL or RVSL trainer (model_final.pth, best.pth or last.pth)")
@click.option("--src", required=True, type=click.Path(file_okay=False), help="folder of (foggy) images")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="output folder; files keep their names")
@click.option("--image", default=None,
              help="which image to write: SJDL enhanced (default) | decoded, RVSL restored (default); all (or both) "
                   "writes each kind into a sub-folder of its name")
@run_options("INPUT.SIZE_TEST [384,384] TEST.IMS_PER_BATCH 16")
def command(checkpoint, src, out, image, no_progress, opts) -> int:
    """Write defogged copies of a folder's images with an SJDL or RVSL checkpoint."""
    from ..engine.restore import defog_folder

    n = defog_folder(checkpoint, src, out, image, list(opts), progress=not no_progress)
    click.echo(f"wrote {n} defogged image(s) to {out}")
    return 0
