"""Options and helpers shared by the ``ensemble`` commands: output checks, the inputs/pipeline options of
``fuse``/``tune`` and loading their inputs."""
from __future__ import annotations

import os
from typing import Optional, Tuple

import click

from post_processing.distance import METRICS
from post_processing.fileio import check_output
from post_processing.submission import TOPK

from ..fusion import FUSIONS
from ..pipeline import DENSE_RERANK_MAX


def check_outputs(*outputs: Tuple[str, Optional[str]]) -> None:
    """Each given ``(option, path)`` can be written and no two options name the same file; raises before
    anything is computed."""
    seen = {}
    for option, path in outputs:
        if not path:
            continue
        check_output(path, option)
        same = seen.setdefault(os.path.realpath(path), option)
        if same != option:
            raise click.UsageError(f"{same} and {option} name the same file {path}")


def inputs_options(func):
    """Options shared by `fuse` and `tune`: what to read and the pipeline (YAML, or the generated step
    options that :class:`StepCommand` inserts after ``--pipeline``)."""
    options = [
        click.option("--models", help="comma-separated model names; features are query_<m>.pkl / gallery_<m>.pkl "
                                      "(or .npz) in --features-dir"),
        click.option("--features-dir", required=True, type=click.Path(file_okay=False),
                     help="folder with the feature files"),
        click.option("--data-root", required=True, type=click.Path(file_okay=False),
                     help="AIC20-layout dataset: name_query.txt, name_test.txt, test_track.txt, "
                          "query_label.xml/test_label.xml when ground truth exists"),
        click.option("--weights", help="fusion weights: 1,0.5,2 in --models order, or a=1,b=0.5"),
        click.option("--fusion", type=click.Choice(FUSIONS), help="concat (default) or distance"),
        click.option("--distance", type=click.Choice(METRICS), help="distance of the fused features (default euclidean)"),
        click.option("--pipeline", "pipeline_file", type=click.Path(dir_okay=False),
                     help="YAML listing models/weights/fusion and the steps in order (replaces the step options)"),
        click.option("--topk", type=click.IntRange(min=1), default=TOPK, show_default=True,
                     help="gallery images per query in track2.txt"),
        click.option("--dense-rerank-max", type=click.IntRange(min=0), default=DENSE_RERANK_MAX, show_default=True,
                     help="above this many query+gallery images re-ranking keeps only the top-K (memory)"),
    ]
    for option in reversed(options):
        func = option(func)
    return split_options(func)


def _val_ids(ctx, param, text: Optional[str]):
    """``--val-ids``: a number of identities (integer) or a fraction in (0, 1)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected a number of identities or a fraction") from None
    return int(value) if value.is_integer() else value


def split_options(func):
    """``--split val|test`` with ``--val-ids``/``--val-seed``: which query/gallery a command works on. The
    validation split is the one the models were trained without (``DATASETS.VAL_IDS``/``VAL_SEED``);
    its features are ``val_query_<m>``/``val_gallery_<m>``, and a ``val`` command never reads a test file."""
    options = [
        click.option("--split", type=click.Choice(("test", "val")), default="test", show_default=True,
                     help="test: the dataset's query/gallery; val: the validation split held out of training"),
        click.option("--val-ids", callback=_val_ids,
                     help="identities held out of training (N or a fraction; the models' DATASETS.VAL_IDS); "
                          "needed by --split val, and by metric learning so it fits on the same training ids"),
        click.option("--val-seed", type=int, default=0, show_default=True,
                     help="the models' DATASETS.VAL_SEED"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def val_ids_of(o: dict, pipe=None):
    """``--val-ids``, else the held-out ids a tuned pipeline records (so that fuse fits metric learning
    on the training ids the models were trained on)."""
    if o["val_ids"] is not None:
        return o["val_ids"], o["val_seed"]
    validation = (pipe.validation or {}) if pipe is not None else {}
    return validation.get("val_ids"), validation.get("val_seed", o["val_seed"])


def load_inputs_for(o: dict, pipe, train: Optional[bool] = None):
    from ..inputs import load_inputs

    val_ids, val_seed = val_ids_of(o, pipe)
    inputs = load_inputs(o["features_dir"], o["data_root"], pipe.models + pipe.aux_models,
                         train=pipe.needs_train if train is None else train, split=o["split"], val_ids=val_ids,
                         val_seed=val_seed)
    lab = inputs.labels
    click.echo(f"data: {o['data_root']} ({o['split']} split): {len(lab.q_pids)} queries, "
               f"{len(lab.g_pids)} gallery images, "
               f"{len(inputs.dataset.extra.get('tracks') or [])} tracks, ground truth: {'yes' if lab.has_gt else 'no'}")
    dims = ", ".join(f"{m} ({inputs.feats['query'][m].shape[1]}-d)" for m in pipe.models)
    click.echo(f"models: {dims}")
    return inputs
