"""``python -m global_model defog --weights CKPT --src DIR --out DIR``: defog a folder with an SJDL checkpoint."""
import argparse

from . import add_run_options

HELP = "write defogged images with an SJDL checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="checkpoint written by the SJDL trainer (model_final.pth, "
                                                         "best.pth or last.pth)")
    parser.add_argument("--src", required=True, help="folder of (foggy) images")
    parser.add_argument("--out", required=True, help="output folder; files keep their names")
    parser.add_argument("--output", choices=("enhanced", "decoded", "both"), default="enhanced",
                        help="which image to write: the enhancement head's (default), the decoder's, or both")
    add_run_options(parser, "INPUT.SIZE_TEST [384,384] TEST.IMS_PER_BATCH 16")


def run(args: argparse.Namespace) -> int:
    from ..sjdl.defog import defog_folder

    n = defog_folder(args.weights, args.src, args.out, args.output, args.opts, progress=not args.no_progress)
    print(f"wrote {n} defogged image(s) to {args.out}", flush=True)
    return 0
