"""Per-process setup of a training or extraction run: the ``torchrun`` process group, sharding and
gathering across its ranks, and rank-aware logging.

Multi-GPU (or multi-process CPU) training and extraction use ``torchrun``, which sets ``WORLD_SIZE``/
``RANK``/``LOCAL_RANK``. The process group is NCCL on CUDA and Gloo on CPU; only rank 0 writes files and logs.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, List, Optional, Tuple

__all__ = ["close_distributed", "gather_to_main", "rank_and_world", "setup_distributed", "setup_logging",
           "shard_bounds"]


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


def rank_and_world() -> Tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_bounds(n: int, rank: int, world: int) -> Tuple[int, int]:
    """``[lo, hi)`` of rank ``rank``'s contiguous share of ``n`` items (sizes differ by at most one), so
    the shards concatenated in rank order are the items in their order."""
    return n * rank // world, n * (rank + 1) // world


def gather_to_main(obj: Any) -> Optional[List[Any]]:
    """Every rank's ``obj`` in rank order on rank 0 (None on the others); ``[obj]`` without a group."""
    import torch.distributed as dist

    rank, world = rank_and_world()
    if world == 1:
        return [obj]
    out = [None] * world if rank == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def close_distributed() -> None:
    """Wait for every rank, then leave the process group (no-op outside one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


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
