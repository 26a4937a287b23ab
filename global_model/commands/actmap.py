"""``python -m global_model actmap --checkpoint CKPT --src DIR --out DIR``: activation maps of a folder."""
import click

from . import OVERRIDES, checkpoint_option, run_options


@click.command(context_settings=OVERRIDES, short_help="write activation maps of a model over a folder of images")
@checkpoint_option("checkpoint written by `train` (a model with a backbone: baseline, SJDL, ...)")
@click.option("--src", required=True, type=click.Path(exists=True, file_okay=False),
              help="folder of images (searched recursively)")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="output folder: one PNG per image (image | map | overlay), sub-folders kept")
@run_options("INPUT.SIZE_TEST [256,256] MODEL.DEVICE cpu")
def command(checkpoint, src, out, no_progress, opts) -> int:
    """Write where the model looks (its last feature map's energy) for every image of a folder."""
    from ..engine.actmap import folder_images, write_actmaps
    from ..engine.extractor import load_model_from_checkpoint

    paths = folder_images(src)
    model, cfg = load_model_from_checkpoint(checkpoint, None, list(opts))
    device = next(model.parameters()).device
    written = write_actmaps(model, cfg, paths, src, out, device, progress=not no_progress)
    click.echo(f"wrote {len(written)} activation map(s) to {out}")
    return 0
