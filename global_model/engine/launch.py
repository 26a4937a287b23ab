"""``python -m global_model train --config CFG [--resume auto|PATH] [KEY VALUE ...]``.

Multi-GPU (or multi-process CPU) training uses ``torchrun``, which sets ``WORLD_SIZE``/``RANK``/
``LOCAL_RANK``: ``torchrun --nproc_per_node 4 -m global_model train --config CFG``. The process
group is NCCL on CUDA and Gloo on CPU; only rank 0 writes files and logs.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

from ..commands import add_run_options

__all__ = ["add_arguments", "run", "run_guarded", "setup_distributed", "setup_logging"]


def run_guarded(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; bad input (config, dataset, checkpoint, image errors) prints one line, exit 2."""
    from ..config import ConfigError
    from ..data.datasets import DatasetError
    from ..data.image_io import ImageReadError
    from .checkpoint import CheckpointError

    try:
        return fn(args)
    except (ConfigError, DatasetError, CheckpointError, ImageReadError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def setup_distributed() -> int:
    """Join the ``torchrun`` process group when ``WORLD_SIZE > 1``; returns the world size."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return world


def setup_logging(output_dir: str, is_main: bool) -> None:
    """Console + ``OUTPUT_DIR/log.txt`` for rank 0; other ranks log warnings only."""
    log = logging.getLogger("global_model")
    log.setLevel(logging.INFO if is_main else logging.WARNING)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.stdout)]
    if is_main:
        os.makedirs(output_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(output_dir, "log.txt")))
    for h in handlers:
        h.setFormatter(fmt)
        log.addHandler(h)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (see global_model/configs/)")
    parser.add_argument("--resume", default=None, metavar="auto|PATH",
                        help="continue a run: a checkpoint path, or 'auto' for OUTPUT_DIR/last.pth if present")
    add_run_options(parser, "SOLVER.MAX_EPOCHS 2 OUTPUT_DIR outputs/r18")


def _train(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from ..config import load_config, save_config
    from .trainer import build_trainer

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


def run(args: argparse.Namespace) -> int:
    return run_guarded(_train, args)
