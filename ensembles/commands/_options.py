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
        knn_option("neighbour search of the top-K re-ranking above --dense-rerank-max"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load_inputs_for(o: dict, pipe):
    from ..inputs import load_inputs

    inputs = load_inputs(o["features_dir"], o["data_root"], pipe.models + pipe.aux_models, train=pipe.needs_train)
    lab = inputs.labels
    click.echo(f"data: {o['data_root']}: {len(lab.q_pids)} queries, {len(lab.g_pids)} gallery images, "
               f"{len(inputs.dataset.extra.get('tracks') or [])} tracks, ground truth: {'yes' if lab.has_gt else 'no'}")
    dims = ", ".join(f"{m} ({inputs.feats['query'][m].shape[1]}-d)" for m in pipe.models)
    click.echo(f"models: {dims}")
    return inputs
