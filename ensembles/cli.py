"""`ensemble` command-line interface: fuse, tune, validate, evaluate, search, visualize, steps.

Commands are thin: they parse options, call :mod:`ensembles` functions and print. The step options
of ``fuse``/``tune`` are generated from the step registry (:mod:`ensembles.cli_steps`). Error
policy: a project error (:class:`post_processing.errors.ReidError`: bad feature files, dataset
layout, pipeline YAML, submission ...) prints ``error: <message>`` naming the file, step or key and
exits 1, or 2 for a usage error, like click's own usage errors; anything else is a bug and keeps its
traceback.

Outputs: every output path is checked before any computation (:func:`_check_outputs`), and a
command with several outputs writes them together at the end (``write_together``): a failing
command leaves every previous output as it was.
"""
from __future__ import annotations

import math
import os
import time
from typing import Optional, Tuple

import click

from post_processing.distance import METRICS
from post_processing.errors import ReidError, exit_code
from post_processing.fileio import check_output, write_together
from post_processing.progress import set_progress
from post_processing.submission import TOPK

from .cli_steps import StepCommand, grids_from_options, pipeline_from_options
from .fusion import FUSIONS
from .pipeline import DENSE_RERANK_MAX


class _Group(click.Group):
    """The ``ensemble`` group: project errors become one line and an exit status (see the module doc)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ReidError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exit_code(exc))


@click.group(cls=_Group)
@click.option("--no-progress", is_flag=True,
              help="no progress bars (they are drawn only when stderr is a terminal anyway)")
def main(no_progress):
    """Fuse ReID features of several models into challenge submissions."""
    set_progress(not no_progress)
    # Before any numba kernel runs: idle OpenMP workers otherwise spin, burning the CPUs others need.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def _check_outputs(*outputs: Tuple[str, Optional[str]]) -> None:
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


def _inputs_options(func):
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
    return func


def _load(o: dict, pipe):
    from .inputs import load_inputs

    inputs = load_inputs(o["features_dir"], o["data_root"], pipe.models + pipe.aux_models, train=pipe.needs_train)
    lab = inputs.labels
    click.echo(f"data: {o['data_root']}: {len(lab.q_pids)} queries, {len(lab.g_pids)} gallery images, "
               f"{len(inputs.dataset.extra.get('tracks') or [])} tracks, ground truth: {'yes' if lab.has_gt else 'no'}")
    dims = ", ".join(f"{m} ({inputs.feats['query'][m].shape[1]}-d)" for m in pipe.models)
    click.echo(f"models: {dims}")
    return inputs


@main.command(cls=StepCommand)
@_inputs_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="track2.txt to write")
@click.option("--metrics-out", type=click.Path(dir_okay=False), help="metrics JSON to write")
@click.option("--save-pipeline", type=click.Path(dir_okay=False), help="also write the pipeline that ran as YAML")
@click.pass_context
def fuse(ctx, **o):
    """Fuse several models' features, post-process, and write track2.txt (+ metrics with ground truth)."""
    from post_processing.submission import write_track2

    from .report import format_table, write_json
    from .run import metrics_json, run_ensemble

    t0 = time.perf_counter()
    pipe = pipeline_from_options(ctx, o)
    _check_outputs(("--out", o["out"]), ("--metrics-out", o["metrics_out"]), ("--save-pipeline", o["save_pipeline"]))
    inputs = _load(o, pipe)
    click.echo(f"pipeline: {pipe.fusion} fusion, {pipe.distance} distance, steps: "
               f"{', '.join(s.label() for s in pipe.steps) or '(none)'}")
    result = run_ensemble(inputs, pipe, topk=o["topk"], dense_rerank_max=o["dense_rerank_max"])
    for note in result.notes:
        click.echo(f"note: {note}")
    with write_together():
        write_track2(o["out"], result.ranking, topk=o["topk"], num_gallery=len(inputs.labels.g_pids))
        if o["metrics_out"]:
            write_json(o["metrics_out"], metrics_json(result, pipe, inputs, o["topk"], o["out"]))
        if o["save_pipeline"]:
            pipe.save(o["save_pipeline"])
    if result.fusion is not None:
        click.echo("")
        click.echo(format_table(*result.rows(pipe)))
        click.echo("")
    else:
        click.echo("no ground truth (query_label.xml / test_label.xml): no metrics")
    click.echo(f"wrote {o['out']} ({len(result.ranking)} queries x {o['topk']})")
    if o["metrics_out"]:
        click.echo(f"wrote {o['metrics_out']}")
    if o["save_pipeline"]:
        click.echo(f"wrote {o['save_pipeline']}")
    click.echo(f"fuse took {time.perf_counter() - t0:.1f} s")


@main.command()
def steps():
    """List the pipeline steps with their stage, keys, types and defaults (for pipeline YAML files)."""
    from .pipeline import STAGE_NAMES, STEPS, canonical_order

    for name in canonical_order():
        spec = STEPS.get(name)
        click.echo(f"{name}  [{STAGE_NAMES[spec.stage]}]  {spec.help}")
        for key, param in spec.params.items():
            default = "required" if param.required else f"default {param.default!r}"
            grid = f" (tune tries {', '.join(map(str, param.grid))})" if param.grid is not None else ""
            click.echo(f"    {key}: {param.describe()}, {default} - {param.help}{grid}")


def _weights(ctx, param, text: str):
    """``--weight-grid``: comma-separated finite numbers >= 0, at least one."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = None
    if not values or not all(math.isfinite(v) and v >= 0 for v in values):
        raise click.BadParameter(f"{text!r}: expected comma-separated weights >= 0")
    return values


def _fusions(ctx, param, text: str):
    values = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in values if f not in FUSIONS]
    if bad or not values:
        bad = bad or [text]
        raise click.BadParameter(f"unknown fusion {bad[0]!r}; expected {', '.join(FUSIONS)}")
    return values


@main.command(cls=StepCommand, grids=True)
@_inputs_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="pipeline YAML to write (for fuse --pipeline)")
@click.option("--budget", type=click.IntRange(min=1), default=40, show_default=True, help="most grid points scored")
@click.option("--search", "search_kind", type=click.Choice(["random", "grid"]), default="random", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--objective", type=click.Choice(["mAP", "aic_map"]), default="mAP", show_default=True)
@click.option("--weight-grid", default="0,0.5,1,2", show_default=True, callback=_weights,
              help="weight values tried per model")
@click.option("--fusions", default=",".join(FUSIONS), show_default=True, callback=_fusions,
              help="fusion methods tried (ignored when --fusion is given)")
@click.pass_context
def tune(ctx, **o):
    """Search fusion weights/method and step parameters (each --<step>-<key>-grid) on a labelled split;
    write the best pipeline."""
    from .report import format_table
    from .tune import SearchSpace, describe, plan_trials
    from .tune import tune as run_tune

    pipe = pipeline_from_options(ctx, o)
    space = SearchSpace(weights=o["weight_grid"], fusions=[o["fusion"]] if o["fusion"] else o["fusions"],
                        grids=grids_from_options(ctx, pipe))
    plan_trials(pipe, space, budget=o["budget"], search=o["search_kind"], seed=o["seed"])
    _check_outputs(("--out", o["out"]))
    inputs = _load(o, pipe)
    trials = run_tune(inputs, pipe, space, budget=o["budget"], search=o["search_kind"], seed=o["seed"],
                      objective=o["objective"], topk=o["topk"], dense_rerank_max=o["dense_rerank_max"],
                      log=click.echo)
    best, base = trials[0], next(t for t in trials if t.pipeline is pipe)
    click.echo("")
    click.echo(format_table([("base: " + describe(base.pipeline), base.scores)] +
                            [(f"#{i + 1}: " + describe(t.pipeline), t.scores) for i, t in enumerate(trials[:5])]))
    header = (f"written by `ensemble tune` on {o['data_root']} ({len(trials)} trials, {o['search_kind']} search, "
              f"seed {o['seed']})\n{o['objective']} {100 * best.objective:.2f} "
              f"(base pipeline {100 * base.objective:.2f}); tuned on the split it is scored on")
    best.pipeline.save(o["out"], header)
    click.echo(f"\nbest: {describe(best.pipeline)}")
    click.echo(f"wrote {o['out']} (use: ensemble fuse --pipeline {o['out']} ...)")


@main.command()
@click.argument("track2", type=click.Path(dir_okay=False))
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="AIC20-layout dataset")
@click.option("--topk", type=click.IntRange(min=1), default=TOPK, show_default=True, help="gallery ids expected per line")
def validate(track2, data_root, topk):
    """Check a track2.txt against the dataset's query and gallery lists (problems with line numbers)."""
    from post_processing.submission import SubmissionError, validate_track2

    from .inputs import load_split_lists

    ds = load_split_lists(data_root)
    problems = validate_track2(track2, len(ds.query), len(ds.gallery), [r.name for r in ds.gallery], topk)
    if problems:
        shown = problems[:50]
        more = [f"... and {len(problems) - len(shown)} more"] if len(problems) > len(shown) else []
        raise SubmissionError([f"{track2}: {len(problems)} problem(s):", *shown, *more])
    click.echo(f"{track2}: valid ({len(ds.query)} lines x {topk} gallery ids in 1..{len(ds.gallery)})")


@main.command()
@click.argument("track2", type=click.Path(dir_okay=False))
@click.option("--data-root", required=True, type=click.Path(file_okay=False),
              help="AIC20-layout dataset with query_label.xml and test_label.xml")
@click.option("--topk", type=click.IntRange(min=1), default=TOPK, show_default=True)
@click.option("--json-out", type=click.Path(dir_okay=False), help="also write the scores as JSON")
def evaluate(track2, data_root, topk, json_out):
    """Score a track2.txt against ground truth (mAP, AIC mAP@100, rank-1/5/10, mINP)."""
    import numpy as np

    from post_processing.submission import SubmissionError, read_track2, validate_track2

    from .inputs import labels_of, load_split_lists
    from .report import ScoreError, format_table, score, write_json

    _check_outputs(("--json-out", json_out))
    ds = load_split_lists(data_root)
    labels = labels_of(ds)
    if not labels.has_gt:
        raise ScoreError(f"{data_root}: no ground truth (query_label.xml and test_label.xml) to score against")
    names = [r.name for r in ds.gallery]
    problems = validate_track2(track2, len(ds.query), len(ds.gallery), names, topk)
    if problems:
        raise SubmissionError([f"{track2}: not a valid submission:", *problems[:20]])
    scores = score(np.asarray(read_track2(track2, names), dtype=np.int64), labels, topk)
    click.echo(format_table([(os.path.basename(track2), scores)]))
    if json_out:
        write_json(json_out, scores)
        click.echo(f"wrote {json_out}")


@main.command()
@click.option("--gallery-features", required=True, type=click.Path(dir_okay=False),
              help="gallery feature file (.pkl or .npz)")
@click.option("--query-dir", type=click.Path(file_okay=False), help="folder of query images")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="model to extract the query features with")
@click.option("--config", type=click.Path(dir_okay=False), help="model YAML (default: stored in the checkpoint)")
@click.option("--query-features", type=click.Path(dir_okay=False),
              help="precomputed query features instead of --query-dir/--checkpoint")
@click.option("--data-root", type=click.Path(file_okay=False),
              help="AIC20 dataset of the gallery: gives image paths and identities")
@click.option("--gallery-dir", type=click.Path(file_okay=False), help="folder of the gallery images (without --data-root)")
@click.option("--topk", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--distance", type=click.Choice(METRICS), default="cosine", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="result.csv to write")
def search(gallery_features, query_dir, checkpoint, config, query_features, data_root, gallery_dir, topk, distance, out):
    """Top-k gallery matches for a folder of query images; writes a CSV (query, id, path, distance, rank)."""
    from post_processing.features import load_features

    from .search import (extract_query_features, gallery_records, query_image_paths, result_rows,
                         search as run_search, write_result_csv)

    _check_outputs(("--out", out))
    if query_features:
        if query_dir or checkpoint:
            raise click.UsageError("give either --query-features or --query-dir with --checkpoint, not both")
        qs = load_features(query_features)
        q_names, qf = qs.names, qs.feats
    elif query_dir and checkpoint:
        q_names, qf = extract_query_features(query_image_paths(query_dir), checkpoint, config)
    else:
        raise click.UsageError("give --query-dir with --checkpoint, or --query-features")
    gs = load_features(gallery_features)
    gallery = gallery_records(gs.names, gallery_features, data_root, gallery_dir)
    idx, dist = run_search(qf, gs.feats, topk, distance, query_source=query_features or query_dir,
                           gallery_source=gallery_features)
    write_result_csv(out, result_rows(q_names, idx, dist, gallery))
    click.echo(f"wrote {out} ({len(q_names)} queries x top-{idx.shape[1]})")


@main.command()
@click.argument("track2", type=click.Path(dir_okay=False))
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="AIC20-layout dataset with images")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="rank-list PNG to write")
@click.option("--cmc-out", type=click.Path(dir_okay=False), help="CMC plot PNG to write (needs ground truth)")
@click.option("--metrics", type=click.Path(dir_okay=False),
              help="fuse --metrics-out JSON: plot the CMC of every model, the fusion and each step")
@click.option("--queries", type=click.IntRange(min=1), default=8, show_default=True,
              help="queries shown (evenly spread)")
@click.option("--topk", type=click.IntRange(min=1), default=10, show_default=True, help="gallery images per query")
def visualize(track2, data_root, out, cmc_out, metrics, queries, topk):
    """Draw each query's top-k (green/red borders for right/wrong with ground truth) and a CMC plot."""
    from .inputs import labels_of, load_split_lists
    from .visualize import cmc_curves, cmc_plot, ranklist_grid, read_ranking, spread_rows

    if metrics and not cmc_out:
        raise click.UsageError("--metrics gives the curves of the CMC plot; add --cmc-out")
    _check_outputs(("--out", out), ("--cmc-out", cmc_out))
    ds = load_split_lists(data_root)
    labels = labels_of(ds)
    ranking = read_ranking(track2, len(ds.query), [r.name for r in ds.gallery], data_root)
    rows = spread_rows(queries, len(ranking))
    gt = (labels.q_pids, labels.g_pids) if labels.has_gt else (None, None)
    curves = cmc_curves(track2, ranking, labels, metrics) if cmc_out else None
    with write_together():
        ranklist_grid(out, [r.path for r in ds.query], [r.path for r in ds.gallery], ranking, rows, topk, *gt)
        if cmc_out:
            cmc_plot(cmc_out, curves, title=f"CMC ({os.path.basename(data_root.rstrip('/'))})")
    click.echo(f"wrote {out} ({len(rows)} queries x top-{min(topk, ranking.shape[1])})")
    if cmc_out:
        click.echo(f"wrote {cmc_out}")
