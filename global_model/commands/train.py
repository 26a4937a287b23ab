"""``python -m global_model train --config CFG [--resume auto|PATH] [KEY VALUE ...]``.

The family (baseline, MGN, SJDL, ...) comes from the config's ``MODEL.META_ARCH``. Multi-GPU (or
multi-process CPU) training: ``torchrun --nproc_per_node 4 -m global_model train --config CFG``;
only rank 0 writes the config, the logs and the checkpoints.
"""
from __future__ import annotations

import logging
import os

import click

from . import OVERRIDES, run_options

# (key, smallest value) of the numbers the trainer needs in range; checked before anything is written.
_MINIMA = (("SOLVER.MAX_EPOCHS", 1), ("SOLVER.IMS_PER_BATCH", 1), ("DATALOADER.NUM_INSTANCE", 1),
           ("SOLVER.ITERS_PER_EPOCH", 0), ("SOLVER.WARMUP_EPOCHS", 0), ("SOLVER.BASE_LR", 0),
           ("SOLVER.CHECKPOINT_PERIOD", 0), ("SOLVER.EVAL_PERIOD", 0), ("DATALOADER.NUM_WORKERS", 0),
           ("TEST.IMS_PER_BATCH", 1))

def check_config(cfg) -> None:
    """Raise :class:`ConfigError` naming the key for a number the trainer cannot use."""
    from ..config import ConfigError

    for key, least in _MINIMA:
        node = cfg
        for part in key.split("."):
            node = node[part]
        if node < least:
            raise ConfigError(f"{key} must be at least {least}, got {node}")
    batch, k = cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE
    if batch % k:
        raise ConfigError(f"SOLVER.IMS_PER_BATCH ({batch}) must be a multiple of DATALOADER.NUM_INSTANCE ({k})")


def check_output_dir(output_dir: str, resume, force: bool) -> None:
    """Refuse to start over where a finished run's outputs would be replaced (``--resume``/``--force`` allow it)."""
    from ..config import ConfigError

    final = os.path.join(output_dir, "model_final.pth")
    if os.path.exists(final) and not resume and not force:
        raise ConfigError(f"OUTPUT_DIR {output_dir} holds a finished run ({final}); training would replace it. "
                          "Choose another OUTPUT_DIR, continue it with --resume, or pass --force")


@click.command(context_settings=OVERRIDES, short_help="train a model from a yacs config (torchrun for multi-GPU)")
@click.option("--config", required=True, type=click.Path(dir_okay=False),
              help="YAML config (see global_model/configs/)")
@click.option("--resume", default=None, metavar="auto|PATH",
              help="continue a run: a checkpoint path, or 'auto' for OUTPUT_DIR/last.pth if present")
@click.option("--force", is_flag=True, help="start over in an OUTPUT_DIR that holds a finished run (model_final.pth)")
@run_options("SOLVER.MAX_EPOCHS 2 OUTPUT_DIR outputs/r18")
def command(config, resume, force, no_progress, opts) -> int:
    """Train a model from a yacs config; the family comes from its MODEL.META_ARCH."""
    import torch.distributed as dist

    from ..config import load_config, save_config
    from ..engine.runtime import setup_distributed, setup_logging
    from ..engine.trainer import build_trainer

    cfg = load_config(config, list(opts))
    check_config(cfg)
    check_output_dir(cfg.OUTPUT_DIR, resume, force)
    world = setup_distributed()
    is_main = not dist.is_initialized() or dist.get_rank() == 0
    setup_logging(cfg.OUTPUT_DIR, is_main)
    try:
        # Built before config.yml is written: a config the trainer refuses replaces nothing.
        trainer = build_trainer(cfg, resume=resume, progress=not no_progress)
        if is_main:
            save_config(cfg, os.path.join(cfg.OUTPUT_DIR, "config.yml"))
            logging.getLogger("global_model").info("config %s -> %s (%d process(es))", config, cfg.OUTPUT_DIR,
                                                   world)
        metrics = trainer.train()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if is_main:
        print("final " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
        for line in summary_lines(trainer.summary(), cfg.SOLVER.EVAL_PERIOD):
            logging.getLogger("global_model").info(line)
    return 0


_ROLES = {"final": "weights + config, for extract/export", "best": "best validation", "last": "for --resume"}


def summary_lines(summary, eval_period: int):
    """The closing lines of a run: best validation epoch and mAP, then every checkpoint by role."""
    if summary["best_map"] is None:
        why = "SOLVER.EVAL_PERIOD 0" if eval_period <= 0 else "no query/gallery ground truth in DATASETS.TEST"
        best = f"none ({why})"
    else:
        epoch = summary["best_epoch"] if summary["best_epoch"] is not None else "? (resumed from an older checkpoint)"
        best = f"epoch {epoch}, mAP {100 * summary['best_map']:.2f}%"
    lines = ["run summary:", f"  best validation: {best}"]
    lines += [f"  {role:<5} {path}  ({_ROLES[role]})" for role, path in summary["checkpoints"].items()]
    return lines
