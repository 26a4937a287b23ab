"""``python -m global_model extract --checkpoint CKPT --out-dir DIR --name NAME [KEY VALUE ...]``.

Rebuilds the model from the checkpoint (its stored config, or ``--config``), folds BatchNorm into
the convolutions, extracts every split asked for, then writes ``DIR/<split>_NAME.pkl`` (or ``.npz``)
for all of them together: a failure on one split replaces none of the files, so a new query file
never sits beside an old gallery file. Each file records the model's fingerprint, the images
``DATASETS.SKIP_BAD`` left out and the dataset's evaluation protocol (see :mod:`post_processing.features`).
Query and gallery never need the training split (``--split train|all`` reads it).
``--split val`` extracts the validation split ``DATASETS.VAL_IDS`` holds out of training (stored in
the checkpoint's config); ``--defog-with`` restores each image with a checkpoint ``defog`` can use
(SJDL, RVSL) before the model sees it. ``--backend onnx --onnx FILE`` runs a file written by
``export`` in onnxruntime instead, with the config stored in it and the same preprocessing, flip TTA
and normalisation (:mod:`global_model.engine.onnx_backend`).

Under ``torchrun --nproc_per_node N -m global_model extract ...`` every rank extracts (and restores)
a contiguous shard of each split and rank 0 writes the files, in dataset order, as one process would.
"""
from __future__ import annotations

import functools
import os

import click

from . import OVERRIDES, checkpoint_option, run_options

SPLIT_CHOICES = {"query": ("query",), "gallery": ("gallery",), "train": ("train",),
                 "both": ("query", "gallery"), "all": ("query", "gallery", "train"),
                 "val": ("val_query", "val_gallery")}


@click.command(context_settings=OVERRIDES, short_help="extract query/gallery features to pickles")
@click.option("--config", default=None, type=click.Path(dir_okay=False),
              help="model YAML; default: the config stored in the checkpoint")
@checkpoint_option("checkpoint written by `train` (e.g. model_final.pth); not with --backend onnx", required=False)
@click.option("--backend", type=click.Choice(("torch", "onnx")), default="torch", show_default=True,
              help="torch: run --checkpoint in PyTorch; onnx: run a file written by `export` in onnxruntime")
@click.option("--onnx", "onnx_file", type=click.Path(dir_okay=False), default=None,
              help="ONNX file written by `export` (with --backend onnx; its stored config is used)")
@click.option("--data-root", default=None, type=click.Path(file_okay=False),
              help="dataset folder with the query/gallery split (default: DATASETS.TEST's root)")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="features folder")
@click.option("--name", required=True, help="model name used in the file names: query_NAME.pkl")
@click.option("--split", type=click.Choice(tuple(SPLIT_CHOICES)), multiple=True,
              help="what to extract (repeat for several): both = query + gallery (default); all adds the "
                   "training images (train_NAME.pkl, which `ensemble fuse --metric` fits on); val = the "
                   "validation split DATASETS.VAL_IDS holds out (val_query_NAME.pkl, val_gallery_NAME.pkl)")
@click.option("--defog-with", type=click.Path(dir_okay=False),
              help="SJDL or RVSL checkpoint: restore every image with it first (its default image, as `defog` "
                   "writes it), then extract (an extra ensemble member, e.g. --name r18@defog)")
@click.option("--format", "fmt", type=click.Choice(("pkl", "npz", "embeddings")), default="pkl", show_default=True,
              help="feature file format; embeddings: the CTL/SNU export DIR/<split>_NAME/embeddings.npy "
                   "(N x D float32) + paths.npy")
@click.option("--centroids", is_flag=True,
              help="with --format embeddings: one row per identity (the mean of its images, normalised like "
                   "the features) and the identity names in paths.npy")
@run_options("TEST.FLIP False TEST.IMS_PER_BATCH 64")
def command(config, checkpoint, backend, onnx_file, data_root, out_dir, name, split, defog_with, fmt, centroids,
            no_progress, opts) -> int:
    """Extract features of the query/gallery (or training) images with a trained model; all files are
    written together."""
    from ..engine.runtime import close_distributed, setup_distributed

    if centroids and fmt != "embeddings":
        raise click.UsageError("--centroids needs --format embeddings")
    opts = list(opts)
    setup_distributed()
    try:
        return _extract(config, checkpoint, backend, onnx_file, data_root, out_dir, name, split, defog_with, fmt,
                        centroids, no_progress, opts)
    finally:
        close_distributed()


def _extract(config, checkpoint, backend, onnx_file, data_root, out_dir, name, split, defog_with, fmt, centroids,
             no_progress, opts) -> int:
    from post_processing.features import save_embedding_sets, save_feature_files

    from ..config import load_config
    from ..data.dataset import build_test_set, build_test_split
    from ..data.datasets import split_table
    from ..engine.extractor import (extract_features, extract_features_sharded, load_model_from_checkpoint,
                                    model_fingerprint, prepare_for_inference)
    from ..engine.runtime import rank_and_world

    main = rank_and_world()[0] == 0
    if backend == "onnx":
        from ..engine.onnx_backend import extract_features_onnx, load_onnx_model

        if not onnx_file or checkpoint or config:
            raise click.UsageError("--backend onnx takes --onnx FILE (written by `export`, with its config) "
                                   "and no --checkpoint or --config")
        if defog_with:
            raise click.UsageError("--defog-with runs with --backend torch")
        model, cfg = load_onnx_model(onnx_file, opts)
        run = functools.partial(extract_features_onnx, model)
        checkpoint = onnx_file  # the model file the features' fingerprint names
    else:
        if not checkpoint or onnx_file:
            raise click.UsageError("--backend torch takes --checkpoint (and --onnx only with --backend onnx)")
        cfg = load_config(config, opts) if config else None
        model, cfg = load_model_from_checkpoint(checkpoint, cfg, opts)
        model = prepare_for_inference(model, bool(cfg.MODEL.CHANNELS_LAST), inplace=True)
        run = functools.partial(extract_features, model)
        if defog_with:
            from ..engine.restore import ImageRestorer

            run = functools.partial(_restore_then_extract, ImageRestorer(defog_with), model)
    wanted = list(dict.fromkeys(part for choice in split or ("both",) for part in SPLIT_CHOICES[choice]))
    ds, splits, skipped = build_test_set(cfg, data_root, train="train" in wanted)
    if main:
        click.echo(split_table(ds))
    if "val_query" in wanted:
        val, val_skipped = build_test_split(cfg, data_root, split="val")
        splits.update({f"val_{k}": v for k, v in val.items()})
        skipped.update({f"val_{k}": v for k, v in val_skipped.items()})
    source = {**model_fingerprint(checkpoint, cfg, defog_with), "protocol": ds.protocol_json()}
    files = []
    for part in wanted:
        result = extract_features_sharded(run, splits[part], cfg, progress=not no_progress,
                                          split=part.removeprefix("val_"))
        if result is None:  # not rank 0: its shard went to rank 0, which writes the files
            continue
        names, feats = result
        if fmt == "embeddings":
            records = splits[part]
            files.append((os.path.join(out_dir, f"{part}_{name}"), [r.path for r in records],
                          [r.pid for r in records], feats))
            continue
        path = os.path.join(out_dir, f"{part}_{name}.{fmt}")
        files.append((path, names, feats, {**source, "split": part, "skipped": skipped[part]}))
    if not main:
        return 0
    if fmt == "embeddings":
        for folder, rows, dim in save_embedding_sets(files, centroids, bool(cfg.TEST.NORM)):
            click.echo(f"wrote {folder}/embeddings.npy ({rows} x {dim} float32) + paths.npy")
        return 0
    save_feature_files(files)
    for path, names, feats, _ in files:
        print(f"wrote {path} ({len(names)} x {feats.shape[1]} float32)", flush=True)
    return 0


def _restore_then_extract(restorer, model, records, cfg, progress=True, split=None):
    """Extraction of the restored images of ``records`` (a shard under torchrun restores only its own)."""
    from ..engine.extractor import extract_features

    images = restorer.restore(records, progress=progress)
    return extract_features(model, records, cfg, progress=progress, split=split, images=images)
