"""``python -m global_model export --checkpoint CKPT --out model.onnx [--dynamic-batch] [--opset N]``.

Exports the checkpoint's inference graph (BatchNorm folded; flip TTA and L2 normalisation stay
outside, in the extractor) to ONNX, runs the file in onnxruntime on a few images against the
PyTorch model and prints the largest difference of the L2-normalised features; above the tolerance
(1e-4, float32) it fails and writes nothing. ``extract --backend onnx --onnx FILE`` then runs it.
"""
import click

from . import OVERRIDES, checkpoint_option, run_options


@click.command(context_settings=OVERRIDES, short_help="export a checkpoint to ONNX, checked against PyTorch")
@checkpoint_option("checkpoint written by `train` (e.g. model_final.pth)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="ONNX file to write (e.g. model.onnx)")
@click.option("--dynamic-batch", is_flag=True, help="any batch size at run time (default: a fixed batch of 1)")
@click.option("--opset", type=click.IntRange(9), default=17, show_default=True, help="ONNX opset version")
@click.option("--images", type=click.Path(exists=True, file_okay=False), default=None,
              help="folder whose first images the parity check uses (default: seeded random images)")
@click.option("--count", type=click.IntRange(1), default=4, show_default=True,
              help="how many images the parity check compares")
@run_options("INPUT.SIZE_TEST [256,256] TEST.FLIP False")
def command(checkpoint, out, dynamic_batch, opset, images, count, no_progress, opts) -> int:
    """Export a trained model to ONNX and verify it with onnxruntime before writing it."""
    from post_processing.fileio import check_output

    from ..engine.export import PARITY_TOLERANCE, export_onnx

    check_output(out, "--out")
    result = export_onnx(checkpoint, out, dynamic_batch=dynamic_batch, opset=opset, opts=list(opts),
                         images=images, count=count)
    batch = "dynamic" if dynamic_batch else "1"
    click.echo(f"wrote {result.path} (opset {result.opset}, input batch {batch}×3×{result.size_hw[0]}×"
               f"{result.size_hw[1]}, {result.feat_dim}-d features)")
    click.echo(f"parity: max |onnx - torch| of L2-normalised features = {result.max_diff:.2e} on {result.images} "
               f"image(s) (tolerance {PARITY_TOLERANCE:g})")
    return 0
