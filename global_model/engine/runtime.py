"""Per-process setup of a training run: the ``torchrun`` process group and rank-aware logging.

Multi-GPU (or multi-process CPU) training uses ``torchrun``, which sets ``WORLD_SIZE``/``RANK``/
``LOCAL_RANK``. The process group is NCCL on CUDA and Gloo on CPU; only rank 0 writes files and logs.
"""
from __future__ import annotations

import logging
import os
import sys

__all__ = ["setup_distributed", "setup_logging"]


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
