"""`ensemble` command-line interface: fuse, tune, validate, evaluate, search, visualize, steps.

Commands are thin: they parse options, call :mod:`ensembles` functions and print. Every expected
failure (bad feature files, dataset layout, pipeline YAML, submission) ends as ``Error: ...`` with
exit status 1, naming the file, step or key.
"""
from __future__ import annotations

import functools
import json
import os
import time
from typing import Dict, List, Optional

import click
import numpy as np

from post_processing.distance import METRICS

from .fusion import FUSIONS
from .pipeline import CANONICAL_ORDER, DENSE_RERANK_MAX, Pipeline, PipelineError, Step

STEP_OPTIONS = ("metric", "pca_dim", "track_average", "track_weighting", "dba", "qe", "qe_alpha", "subtract",
                "camera_penalty", "rerank", "k1", "k2", "lambda_", "track_distance", "track_expand")


@click.group()
def main():
    """Fuse ReID features of several models into challenge submissions."""


def _friendly(func):
    """Turns the library's input errors (all ValueError/OSError subclasses) into click errors."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (ValueError, OSError) as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def _inputs_options(func):
    """Options shared by `fuse` and `tune`: what to read and the pipeline (YAML or step options)."""
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
        click.option("--metric", help="step: metric learning with this algorithm (needs train_<m>.pkl)"),
        click.option("--pca-dim", type=int, help="PCA dimension before metric learning"),
        click.option("--track-average", is_flag=True, help="step: average gallery features over each track"),
        click.option("--track-weighting", default="inverse_distance", show_default=True,
                     help="track averaging weights: mean, inverse_distance or pairwise"),
        click.option("--dba", type=int, metavar="K", help="step: database-side augmentation with K neighbours"),
        click.option("--qe", type=int, metavar="K", help="step: query expansion with K neighbours"),
        click.option("--qe-alpha", type=float, help="alpha-QE exponent (default: average QE)"),
        click.option("--subtract", multiple=True, metavar="MODEL[:WEIGHT]",
                     help="step: subtract WEIGHT (0.1) x the distance of an auxiliary model (camera/orientation)"),
        click.option("--camera-penalty", type=float, metavar="P",
                     help="step: add P to same-camera distances (needs camera ids)"),
        click.option("--rerank/--no-rerank", default=False, help="step: k-reciprocal re-ranking (default off)"),
        click.option("--k1", type=int, default=20, show_default=True, help="re-ranking k1"),
        click.option("--k2", type=int, default=6, show_default=True, help="re-ranking k2"),
        click.option("--lambda", "lambda_", type=float, default=0.3, show_default=True, help="re-ranking lambda"),
        click.option("--track-distance", is_flag=True, help="step: each gallery image takes its track's best distance"),
        click.option("--track-expand", is_flag=True, help="step: insert whole tracks into the ranking"),
        click.option("--topk", type=int, default=100, show_default=True, help="gallery images per query in track2.txt"),
        click.option("--dense-rerank-max", type=int, default=DENSE_RERANK_MAX, show_default=True,
                     help="above this many query+gallery images re-ranking keeps only the top-K (memory)"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _parse_weights(text: Optional[str], models: List[str]) -> Dict[str, float]:
    if not text:
        return {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        if any("=" in p for p in parts):
            raise ValueError("mixes name=value and plain values")
        if len(parts) != len(models):
            raise ValueError(f"has {len(parts)} values for {len(models)} models ({', '.join(models)})")
        return {m: float(v) for m, v in zip(models, parts)}
    except ValueError as e:
        raise PipelineError(f"--weights {text!r}: {e}; expected 1,0.5 (one per model) or name=1,name2=0.5") from None


def _steps_from_options(o: dict) -> List[Step]:
    made = {}
    if o["metric"]:
        made["metric"] = [Step.make("metric", "--metric", method=o["metric"], pca_dim=o["pca_dim"])]
    if o["track_average"]:
        made["track_average"] = [Step.make("track_average", "--track-average", weighting=o["track_weighting"])]
    if o["dba"] is not None:
        made["dba"] = [Step.make("dba", "--dba", k=o["dba"])]
    if o["qe"] is not None:
        made["qe"] = [Step.make("qe", "--qe", k=o["qe"], alpha=o["qe_alpha"])]
    subtract = []
    for spec in o["subtract"]:
        model, _, weight = spec.partition(":")
        try:
            params = {"model": model, **({"weight": float(weight)} if weight else {})}
        except ValueError:
            raise PipelineError(f"--subtract {spec!r}: weight must be a number (MODEL:0.1)") from None
        subtract.append(Step.make("subtract", "--subtract", **params))
    if subtract:
        made["subtract"] = subtract
    if o["camera_penalty"] is not None:
        made["camera_penalty"] = [Step.make("camera_penalty", "--camera-penalty", penalty=o["camera_penalty"])]
    if o["rerank"]:
        made["rerank"] = [Step.make("rerank", "--rerank", k1=o["k1"], k2=o["k2"], **{"lambda": o["lambda_"]})]
    if o["track_distance"]:
        made["track_distance"] = [Step.make("track_distance", "--track-distance")]
    if o["track_expand"]:
        made["track_expand"] = [Step.make("track_expand", "--track-expand")]
    return [s for name in CANONICAL_ORDER for s in made.get(name, [])]


def _resolve_pipeline(ctx: click.Context, o: dict) -> Pipeline:
    """The pipeline from ``--pipeline`` (or the step options) with --models/--weights/--fusion/--distance on top."""
    given = [n for n in STEP_OPTIONS
             if ctx.get_parameter_source(n) not in (click.core.ParameterSource.DEFAULT, None)]
    if o["pipeline_file"]:
        if given:
            flags = ", ".join("--" + n.rstrip("_").replace("_", "-") for n in given)
            raise PipelineError(f"--pipeline {o['pipeline_file']} lists the steps; do not combine it with step "
                                f"options ({flags})")
        pipe = Pipeline.load(o["pipeline_file"])
    else:
        pipe = Pipeline(steps=_steps_from_options(o))
    if o["models"]:
        pipe.models = [m.strip() for m in o["models"].split(",") if m.strip()]
        pipe.weights = {m: w for m, w in pipe.weights.items() if m in pipe.models}
    if not pipe.models:
        raise PipelineError("no models: give --models a,b,c or list them under 'models:' in the pipeline YAML")
    if o["weights"]:
        pipe.weights = _parse_weights(o["weights"], pipe.models)
    if o["fusion"]:
        pipe.fusion = o["fusion"]
    if o["distance"]:
        pipe.distance = o["distance"]
    return pipe.validate(o["pipeline_file"] or "command line")


def _load(o: dict, pipe: Pipeline):
    from .inputs import load_inputs

    inputs = load_inputs(o["features_dir"], o["data_root"], pipe.models + pipe.aux_models, train=pipe.needs_train)
    lab = inputs.labels
    click.echo(f"data: {o['data_root']}: {len(lab.q_pids)} queries, {len(lab.g_pids)} gallery images, "
               f"{len(inputs.dataset.extra.get('tracks') or [])} tracks, ground truth: {'yes' if lab.has_gt else 'no'}")
    dims = ", ".join(f"{m} ({inputs.feats['query'][m].shape[1]}-d)" for m in pipe.models)
    click.echo(f"models: {dims}")
    return inputs


@main.command()
@_inputs_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="track2.txt to write")
@click.option("--metrics-out", type=click.Path(dir_okay=False), help="metrics JSON to write")
@click.option("--save-pipeline", type=click.Path(dir_okay=False), help="also write the pipeline that ran as YAML")
@click.pass_context
@_friendly
def fuse(ctx, **o):
    """Fuse several models' features, post-process, and write track2.txt (+ metrics with ground truth)."""
    from post_processing.submission import write_track2

    from .fuse import fuse as run_fuse
    from .fuse import metrics_json
    from .report import format_table, write_json

    t0 = time.perf_counter()
    pipe = _resolve_pipeline(ctx, o)
    inputs = _load(o, pipe)
    click.echo(f"pipeline: {pipe.fusion} fusion, {pipe.distance} distance, steps: "
               f"{', '.join(s.label() for s in pipe.steps) or '(none)'}")
    result = run_fuse(inputs, pipe, topk=o["topk"], dense_rerank_max=o["dense_rerank_max"])
    for note in result.notes:
        click.echo(f"note: {note}")
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
    from .pipeline import STAGE_NAMES, STEPS

    for name in CANONICAL_ORDER:
        spec = STEPS[name]
        click.echo(f"{name}  [{STAGE_NAMES[spec.stage]}]  {spec.help}")
        for key, param in spec.params.items():
            default = "required" if param.required else f"default {param.default!r}"
            click.echo(f"    {key}: {param.describe()}, {default} - {param.help}")


def _floats(text: str, what: str) -> List[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated numbers", param_hint=what) from None


def _ints(text: str, what: str) -> List[int]:
    values = _floats(text, what)
    if any(v != int(v) for v in values):
        raise click.BadParameter(f"{text!r}: expected comma-separated integers", param_hint=what)
    return [int(v) for v in values]


@main.command()
@_inputs_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="pipeline YAML to write (for fuse --pipeline)")
@click.option("--budget", type=int, default=40, show_default=True, help="most grid points scored")
@click.option("--search", "search_kind", type=click.Choice(["random", "grid"]), default="random", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--objective", type=click.Choice(["mAP", "aic_map"]), default="mAP", show_default=True)
@click.option("--weight-grid", default="0,0.5,1,2", show_default=True, help="weight values tried per model")
@click.option("--fusions", default=",".join(FUSIONS), show_default=True,
              help="fusion methods tried (ignored when --fusion is given)")
@click.option("--k1-grid", default="10,20,30", show_default=True)
@click.option("--k2-grid", default="3,6,10", show_default=True)
@click.option("--lambda-grid", default="0.1,0.3,0.5", show_default=True)
@click.pass_context
@_friendly
def tune(ctx, **o):
    """Search fusion weights/method and re-ranking parameters on a labelled split; write the best pipeline."""
    from .report import format_table
    from .tune import SearchSpace, describe
    from .tune import tune as run_tune

    pipe = _resolve_pipeline(ctx, o)
    fusions = [o["fusion"]] if o["fusion"] else [f.strip() for f in o["fusions"].split(",") if f.strip()]
    bad = [f for f in fusions if f not in FUSIONS]
    if bad:
        raise click.BadParameter(f"unknown fusion {bad[0]!r}; expected {', '.join(FUSIONS)}", param_hint="--fusions")
    space = SearchSpace(weights=_floats(o["weight_grid"], "--weight-grid"), fusions=fusions,
                        k1=_ints(o["k1_grid"], "--k1-grid"), k2=_ints(o["k2_grid"], "--k2-grid"),
                        lambdas=_floats(o["lambda_grid"], "--lambda-grid"))
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
@click.option("--topk", type=int, default=100, show_default=True, help="gallery ids expected per line")
@_friendly
def validate(track2, data_root, topk):
    """Check a track2.txt against the dataset's query and gallery lists (problems with line numbers)."""
    from post_processing.submission import validate_track2

    from .inputs import load_split_lists

    ds = load_split_lists(data_root)
    problems = validate_track2(track2, len(ds.query), len(ds.gallery), [r.name for r in ds.gallery], topk)
    if problems:
        shown = problems[:50]
        more = f"\n... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise click.ClickException(f"{track2}: {len(problems)} problem(s):\n" + "\n".join(shown) + more)
    click.echo(f"{track2}: valid ({len(ds.query)} lines x {topk} gallery ids in 1..{len(ds.gallery)})")


@main.command()
@click.argument("track2", type=click.Path(dir_okay=False))
@click.option("--data-root", required=True, type=click.Path(file_okay=False),
              help="AIC20-layout dataset with query_label.xml and test_label.xml")
@click.option("--topk", type=int, default=100, show_default=True)
@click.option("--json-out", type=click.Path(dir_okay=False), help="also write the scores as JSON")
@_friendly
def evaluate(track2, data_root, topk, json_out):
    """Score a track2.txt against ground truth (mAP, AIC mAP@100, rank-1/5/10, mINP)."""
    from post_processing.submission import read_track2, validate_track2

    from .inputs import labels_of, load_split_lists
    from .report import format_table, score, write_json

    ds = load_split_lists(data_root)
    labels = labels_of(ds)
    if not labels.has_gt:
        raise click.ClickException(f"{data_root}: no ground truth (query_label.xml and test_label.xml) to score against")
    names = [r.name for r in ds.gallery]
    problems = validate_track2(track2, len(ds.query), len(ds.gallery), names, topk)
    if problems:
        raise click.ClickException(f"{track2}: not a valid submission:\n" + "\n".join(problems[:20]))
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
@click.option("--topk", type=int, default=10, show_default=True)
@click.option("--distance", type=click.Choice(METRICS), default="cosine", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="result.csv to write")
@_friendly
def search(gallery_features, query_dir, checkpoint, config, query_features, data_root, gallery_dir, topk, distance, out):
    """Top-k gallery matches for a folder of query images; writes a CSV (query, id, path, distance, rank)."""
    from global_model.data.records import ImageRecord
    from post_processing.features import load_features

    from .search import extract_query_features, query_image_paths, result_rows, search as run_search, write_result_csv

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
    if data_root:
        from .inputs import load_split_lists

        by_name = {r.name: r for r in load_split_lists(data_root).gallery}
        missing = [n for n in gs.names if n not in by_name]
        if missing:
            raise click.ClickException(f"{gallery_features}: {len(missing)} gallery name(s) not in {data_root}'s "
                                       f"gallery list, first: {', '.join(missing[:5])}")
        gallery = [by_name[n] for n in gs.names]
    else:
        gallery = [ImageRecord(os.path.join(gallery_dir or "", n), -1, -1) for n in gs.names]
    idx, dist = run_search(qf, gs.feats, topk, distance)
    write_result_csv(out, result_rows(q_names, idx, dist, gallery))
    click.echo(f"wrote {out} ({len(q_names)} queries x top-{idx.shape[1]})")


@main.command()
@click.argument("track2", type=click.Path(dir_okay=False))
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="AIC20-layout dataset with images")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="rank-list PNG to write")
@click.option("--cmc-out", type=click.Path(dir_okay=False), help="CMC plot PNG to write (needs ground truth)")
@click.option("--metrics", type=click.Path(dir_okay=False),
              help="fuse --metrics-out JSON: plot the CMC of every model, the fusion and each step")
@click.option("--queries", type=int, default=8, show_default=True, help="queries shown (evenly spread)")
@click.option("--topk", type=int, default=10, show_default=True, help="gallery images per query")
@_friendly
def visualize(track2, data_root, out, cmc_out, metrics, queries, topk):
    """Draw each query's top-k (green/red borders for right/wrong with ground truth) and a CMC plot."""
    from post_processing.submission import read_track2

    from .inputs import labels_of, load_split_lists
    from .report import score
    from .visualize import cmc_plot, curves_from_metrics, ranklist_grid

    ds = load_split_lists(data_root)
    labels = labels_of(ds)
    ranking = read_track2(track2, [r.name for r in ds.gallery])
    if len(ranking) != len(ds.query):
        raise click.ClickException(f"{track2} has {len(ranking)} lines, {data_root} has {len(ds.query)} queries")
    width = min(len(r) for r in ranking)
    ranking = np.asarray([r[:width] for r in ranking], dtype=np.int64)
    rows = sorted(set(np.linspace(0, len(ranking) - 1, min(queries, len(ranking))).round().astype(int).tolist()))
    gt = (labels.q_pids, labels.g_pids) if labels.has_gt else (None, None)
    ranklist_grid(out, [r.path for r in ds.query], [r.path for r in ds.gallery], ranking, rows, topk, *gt)
    click.echo(f"wrote {out} ({len(rows)} queries x top-{min(topk, width)})")
    if cmc_out:
        if metrics:
            with open(metrics, encoding="utf-8") as f:
                curves = curves_from_metrics(json.load(f))
        elif labels.has_gt:
            curves = {os.path.basename(track2): score(ranking, labels, width)["cmc"]}
        else:
            raise click.ClickException("--cmc-out needs ground truth (query_label.xml/test_label.xml) or --metrics")
        cmc_plot(cmc_out, curves, title=f"CMC ({os.path.basename(data_root.rstrip('/'))})")
        click.echo(f"wrote {cmc_out}")
