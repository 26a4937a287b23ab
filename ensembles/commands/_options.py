"""Options and helpers shared by the ``ensemble`` commands: output checks, the dataset options, the
inputs/pipeline options of ``fuse``/``tune``, loading their inputs, and writing/reading a ranking in the
dataset's form (AIC20: ``track2.txt``; any other dataset: the ranking file of :mod:`post_processing.ranking`)."""
from __future__ import annotations

import os
from typing import Optional, Tuple

import click

from post_processing.distance import METRICS
from post_processing.fileio import check_output
from post_processing.submission import TOPK

from ..fusion import FUSIONS
from ..inputs import DATASET
from ..pipeline import DENSE_RERANK_MAX

DATASET_HELP = ("dataset entry as in DATASETS.TEST: name, name=PATH or name(key=value, ...)=PATH, e.g. "
                "cuhk03_np(variant=labeled)=data/cuhk03-np (`ensemble datasets` lists them)")
DATA_ROOT_HELP = "folder of the dataset when --dataset names no PATH (AIC20 layout: name_query.txt, name_test.txt ...)"


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


def _parse_knn(ctx, param, value):
    from post_processing.knn import parse_knn

    return None if value is None else str(parse_knn(value))


def knn_option(what: str):
    """``--knn BACKEND[:KEY=VALUE,...]``: the neighbour backend (:mod:`post_processing.knn`) of ``what``."""
    return click.option("--knn", default=None, callback=_parse_knn, metavar="BACKEND[:K=V,...]",
                        help=f"{what}: exact (default), faiss (flat; GPU when available), "
                             "faiss-ivf[:nlist=N,nprobe=P,pq=M] or faiss-hnsw[:m=M,ef_search=E] (needs faiss)")


def inputs_options(func):
    """Options shared by `fuse` and `tune`: what to read and the pipeline (YAML, or the generated step
    options that :class:`StepCommand` inserts after ``--pipeline``)."""
    options = [
        click.option("--models", help="comma-separated model names; features are query_<m>.pkl / gallery_<m>.pkl "
                                      "(or .npz) in --features-dir"),
        click.option("--features-dir", required=True, type=click.Path(file_okay=False),
                     help="folder with the feature files"),
        click.option("--dataset", default=DATASET, show_default=True, help=DATASET_HELP),
        click.option("--data-root", type=click.Path(file_okay=False), help=DATA_ROOT_HELP),
        click.option("--weights", help="fusion weights: 1,0.5,2 in --models order, or a=1,b=0.5"),
        click.option("--fusion", type=click.Choice(FUSIONS), help="concat (default) or distance"),
        click.option("--distance", type=click.Choice(METRICS), help="distance of the fused features (default euclidean)"),
        click.option("--pipeline", "pipeline_file", type=click.Path(dir_okay=False),
                     help="YAML listing models/weights/fusion and the steps in order (replaces the step options)"),
        click.option("--topk", type=click.IntRange(min=1), default=TOPK, show_default=True,
                     help="gallery images per query in track2.txt / the ranking file"),
        click.option("--dense-rerank-max", type=click.IntRange(min=0), default=DENSE_RERANK_MAX, show_default=True,
                     help="above this many query+gallery images re-ranking keeps only the top-K (memory)"),
        knn_option("neighbour search of the top-K re-ranking above --dense-rerank-max"),
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
                         train=pipe.needs_train if train is None else train, spec=o["dataset"], split=o["split"],
                         val_ids=val_ids, val_seed=val_seed)
    lab, ds = inputs.labels, inputs.dataset
    whole = f" (post-processed together: all {len(lab.q_pids)} test images)" if inputs.whole_test_set else ""
    click.echo(f"data: {ds.name} at {ds.root} ({o['split']} split): {len(ds.query)} queries, "
               f"{len(ds.gallery)} gallery images{whole}, {len(ds.extra.get('tracks') or [])} tracks, "
               f"ground truth: {'yes' if lab.has_gt else 'no'}")
    click.echo(f"protocol: {ds.protocol_label}")
    dims = ", ".join(f"{m} ({inputs.feats['query'][m].shape[1]}-d)" for m in pipe.models)
    click.echo(f"models: {dims}")
    return inputs


def dataset_options(func):
    """``--dataset SPEC`` and ``--data-root`` of the commands that read a dataset's lists."""
    func = click.option("--data-root", type=click.Path(file_okay=False), help=DATA_ROOT_HELP)(func)
    return click.option("--dataset", default=DATASET, show_default=True, help=DATASET_HELP)(func)


def uses_track2(ds) -> bool:
    """AIC20 rankings are challenge submissions (``track2.txt``); every other dataset's a ranking file."""
    return ds.name == "aic20"


def write_result(path: str, ds, ranking, topk: int) -> None:
    """Write the top-``topk`` of ``ranking`` in the dataset's form."""
    from post_processing.ranking import write_ranking
    from post_processing.submission import write_track2

    from ..inputs import ranking_scope

    if uses_track2(ds):
        write_track2(path, ranking, topk=topk, num_gallery=len(ds.gallery))
    else:
        scope = ranking_scope(ds)
        write_ranking(path, [r.name for r in ds.query], [r.name for r in ds.gallery], ranking[:, :topk],
                      comments=[f"ranks {scope}"] if scope else ())


def read_result(path: str, ds, topk: int):
    """``(ranking, K)``: a ``track2.txt`` (AIC20, checked against the lists and ``topk``) or a ranking file
    (any other dataset; K is the file's)."""
    import numpy as np

    from post_processing.ranking import read_ranking
    from post_processing.submission import SubmissionError, read_track2, validate_track2

    gallery = [r.name for r in ds.gallery]
    if not uses_track2(ds):
        ranking = read_ranking(path, [r.name for r in ds.query], gallery)
        return ranking, ranking.shape[1]
    problems = validate_track2(path, len(ds.query), len(ds.gallery), gallery, topk)
    if problems:
        raise SubmissionError([f"{path}: not a valid submission:", *problems[:20]])
    return np.asarray(read_track2(path, gallery), dtype=np.int64), topk
