"""``python -m global_model defog --checkpoint CKPT --src DIR --out DIR``: defog a folder with an SJDL checkpoint."""
import click

from . import OVERRIDES, checkpoint_option, run_options


@click.command(context_settings=OVERRIDES, short_help="write defogged images with an SJDL checkpoint")
@checkpoint_option("checkpoint written by the SJDL trainer (model_final.pth, best.pth or last.pth)")
@click.option("--src", required=True, type=click.Path(file_okay=False), help="folder of (foggy) images")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="output folder; files keep their names")
@click.option("--image", type=click.Choice(("enhanced", "decoded", "both")), default="enhanced", show_default=True,
              help="which image to write: the enhancement head's, the decoder's, or both")
@run_options("INPUT.SIZE_TEST [384,384] TEST.IMS_PER_BATCH 16")
def command(checkpoint, src, out, image, no_progress, opts) -> int:
    """Write defogged copies of a folder's images with an SJDL checkpoint."""
    from ..sjdl.defog import defog_folder

    n = defog_folder(checkpoint, src, out, image, list(opts), progress=not no_progress)
    click.echo(f"wrote {n} defogged image(s) to {out}")
    return 0
