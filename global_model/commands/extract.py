"""``python -m global_model extract --checkpoint CKPT --out-dir DIR --name NAME [KEY VALUE ...]``.

Rebuilds the model from the checkpoint (its stored config, or ``--config``), folds BatchNorm into
the convolutions, extracts every split asked for, then writes ``DIR/<split>_NAME.pkl`` (or ``.npz``)
for all of them together: a failure on one split replaces none of the files, so a new query file
never sits beside an old gallery file. Each file records the model's fingerprint and the images
``DATASETS.SKIP_BAD`` left out (see :mod:`post_processing.features`).

Under ``torchrun --nproc_per_node N -m global_model extract ...`` every rank extracts a contiguous
shard of each split and rank 0 writes the files, in dataset order, as one process would.
"""
from __future__ import annotations

import os

import click

from . import OVERRIDES, checkpoint_option, run_options

SPLIT_CHOICES = {"query": ("query",), "gallery": ("gallery",), "train": ("train",),
                 "both": ("query", "gallery"), "all": ("query", "gallery", "train")}


@click.command(context_settings=OVERRIDES, short_help="extract query/gallery features to pickles")
@click.option("--config", default=None, type=click.Path(dir_okay=False),
              help="model YAML; default: the config stored in the checkpoint")
@checkpoint_option("checkpoint written by `train` (e.g. model_final.pth)")
@click.option("--data-root", default=None, type=click.Path(file_okay=False),
              help="dataset folder with the query/gallery split (default: DATASETS.TEST's root)")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="features folder")
@click.option("--name", required=True, help="model name used in the file names: query_NAME.pkl")
@click.option("--split", type=click.Choice(tuple(SPLIT_CHOICES)), default="both", show_default=True,
              help="what to extract: both = query + gallery; all adds the training images "
                   "(train_NAME.pkl, which `ensemble fuse --metric` fits on)")
@click.option("--format", "fmt", type=click.Choice(("pkl", "npz")), default="pkl", show_default=True,
              help="feature file format")
@run_options("TEST.FLIP False TEST.IMS_PER_BATCH 64")
def command(config, checkpoint, data_root, out_dir, name, split, fmt, no_progress, opts) -> int:
    """Extract features of the query/gallery (or training) images with a trained model; all files are
    written together."""
    from post_processing.features import save_feature_files

    from ..config import load_config
    from ..data.dataset import build_test_split
    from ..engine.extractor import (extract_features_sharded, load_model_from_checkpoint, model_fingerprint,
                                    prepare_for_inference)
    from ..engine.runtime import close_distributed, rank_and_world, setup_distributed

    opts = list(opts)
    setup_distributed()
    cfg = load_config(config, opts) if config else None
    model, cfg = load_model_from_checkpoint(checkpoint, cfg, opts)
    model = prepare_for_inference(model, bool(cfg.MODEL.CHANNELS_LAST), inplace=True)
    wanted = SPLIT_CHOICES[split]
    splits, skipped = build_test_split(cfg, data_root, train="train" in wanted)
    source = model_fingerprint(checkpoint, cfg)
    files = []
    for part in wanted:
        result = extract_features_sharded(model, splits[part], cfg, progress=not no_progress)
        if result is not None:
            path = os.path.join(out_dir, f"{part}_{name}.{fmt}")
            files.append((path, *result, {**source, "split": part, "skipped": skipped[part]}))
    try:
        if rank_and_world()[0] == 0:
            save_feature_files(files)
    finally:
        close_distributed()
    for path, names, feats, _ in files:
        print(f"wrote {path} ({len(names)} x {feats.shape[1]} float32)", flush=True)
    return 0
