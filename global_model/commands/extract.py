"""``python -m global_model extract --weights CKPT --out-dir DIR --name NAME [KEY VALUE ...]``.

Rebuilds the model from the checkpoint (its stored config, or ``--config``), folds BatchNorm into
the convolutions, extracts every split asked for, then writes ``DIR/<split>_NAME.pkl`` (or ``.npz``)
for all of them together: a failure on one split replaces none of the files, so a new query file
never sits beside an old gallery file. Each file records the model's fingerprint and the images
``DATASETS.SKIP_BAD`` left out (see :mod:`post_processing.features`).
"""
from __future__ import annotations

import argparse
import os

from . import add_run_options

HELP = "extract query/gallery features to pickles"

SPLIT_CHOICES = {"query": ("query",), "gallery": ("gallery",), "train": ("train",),
                 "both": ("query", "gallery"), "all": ("query", "gallery", "train")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help="model YAML; default: the config stored in the checkpoint")
    parser.add_argument("--weights", required=True, help="checkpoint written by `train` (e.g. model_final.pth)")
    parser.add_argument("--data-root", default=None,
                        help="dataset folder with the query/gallery split (default: DATASETS.TEST's root)")
    parser.add_argument("--out-dir", required=True, help="features folder")
    parser.add_argument("--name", required=True, help="model name used in the file names: query_NAME.pkl")
    parser.add_argument("--split", choices=tuple(SPLIT_CHOICES), default="both",
                        help="what to extract: both = query + gallery (default); all adds the training images "
                             "(train_NAME.pkl, which `ensemble fuse --metric` fits on)")
    parser.add_argument("--format", choices=("pkl", "npz"), default="pkl")
    add_run_options(parser, "TEST.FLIP False TEST.IMS_PER_BATCH 64")


def run(args: argparse.Namespace) -> int:
    from post_processing.features import save_feature_files

    from ..config import load_config
    from ..data.dataset import build_test_split
    from ..engine.extractor import (extract_features, load_model_from_checkpoint, model_fingerprint,
                                    prepare_for_inference)

    cfg = load_config(args.config, args.opts) if args.config else None
    model, cfg = load_model_from_checkpoint(args.weights, cfg, args.opts)
    model = prepare_for_inference(model, bool(cfg.MODEL.CHANNELS_LAST), inplace=True)
    wanted = SPLIT_CHOICES[args.split]
    splits, skipped = build_test_split(cfg, args.data_root, train="train" in wanted)
    source = model_fingerprint(args.weights, cfg)
    files = []
    for split in wanted:
        names, feats = extract_features(model, splits[split], cfg, progress=not args.no_progress)
        path = os.path.join(args.out_dir, f"{split}_{args.name}.{args.format}")
        files.append((path, names, feats, {**source, "split": split, "skipped": skipped[split]}))
    save_feature_files(files)
    for path, names, feats, _ in files:
        print(f"wrote {path} ({len(names)} x {feats.shape[1]} float32)", flush=True)
    return 0
