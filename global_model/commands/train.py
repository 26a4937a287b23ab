"""``python -m global_model train --config CFG [--resume auto|PATH] [KEY VALUE ...]``.

The family (baseline, MGN, SJDL, ...) comes from the config's ``MODEL.META_ARCH``. Multi-GPU (or
multi-process CPU) training: ``torchrun --nproc_per_node 4 -m global_model train --config CFG``;
only rank 0 writes the config, the logs and the checkpoints.
"""
from __future__ import annotations

import argparse
import logging
import os

from . import add_run_options

HELP = "train a model from a yacs config (torchrun for multi-GPU)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (see global_model/configs/)")
    parser.add_argument("--resume", default=None, metavar="auto|PATH",
                        help="continue a run: a checkpoint path, or 'auto' for OUTPUT_DIR/last.pth if present")
    add_run_options(parser, "SOLVER.MAX_EPOCHS 2 OUTPUT_DIR outputs/r18")


def run(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from ..config import load_config, save_config
    from ..engine.runtime import setup_distributed, setup_logging
    from ..engine.trainer import build_trainer

    cfg = load_config(args.config, args.opts)
    world = setup_distributed()
    is_main = not dist.is_initialized() or dist.get_rank() == 0
    setup_logging(cfg.OUTPUT_DIR, is_main)
    if is_main:
        save_config(cfg, os.path.join(cfg.OUTPUT_DIR, "config.yml"))
        logging.getLogger("global_model").info("config %s -> %s (%d process(es))", args.config, cfg.OUTPUT_DIR, world)
    try:
        trainer = build_trainer(cfg, resume=args.resume, progress=not args.no_progress)
        metrics = trainer.train()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if is_main:
        print("final " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
    return 0
