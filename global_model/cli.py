"""``python -m global_model <command>``: one argparse front end shared with ``mgn_model``.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
only the chosen module is imported, so ``synth --help`` does not pay for importing torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Dict, Optional, Sequence, Tuple

COMMANDS: Dict[str, Tuple[str, str]] = {
    "synth": ("global_model.data.synth", "generate the synthetic foggy-vehicle benchmark (AIC20 layout)"),
    "fog": ("global_model.data.fog", "add synthetic fog to a folder of clear images (FVRID-style pairs)"),
    "train": ("global_model.engine.launch", "train a model from a yacs config (torchrun for multi-GPU)"),
    "extract": ("global_model.engine.extractor", "extract query/gallery features to pickles"),
    "defog": ("global_model.engine.defog", "write defogged images with an SJDL checkpoint"),
}


def add_run_options(parser: argparse.ArgumentParser, example: str) -> None:
    """The options every torch command ends with: ``--no-progress`` and trailing ``KEY VALUE`` overrides."""
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help=f"config overrides, e.g. {example}")


def main(argv: Optional[Sequence[str]] = None, prog: str = "global_model",
         commands: Sequence[str] = tuple(COMMANDS)) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=f"python -m {prog}")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(commands) + "}")
    for name in commands:
        sub.add_parser(name, help=COMMANDS[name][1], add_help=False)
    if not argv or argv[0] not in commands:
        args = parser.parse_args(argv)  # prints usage / error for unknown commands
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    cmd_parser = argparse.ArgumentParser(prog=f"python -m {prog} {argv[0]}", description=COMMANDS[argv[0]][1])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    args.prog = prog
    return int(module.run(args) or 0)
