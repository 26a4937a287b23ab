"""``ensemble tune``: search fusion weights/method and step parameters on a labelled split.

``--search ascent`` (what a competition team does on its validation split, ``--split val``): each
model alone, then the fusion method and weights (0 drops a model) when split-half cross-validation
says tuned weights beat equal ones there, then each candidate step kept only when it gains on the
split; the pipeline YAML it writes carries that validation table, which ``ensemble fuse --pipeline``
reports beside the test rows. ``random``/``grid`` search the parameter
grids of a fixed pipeline."""
from __future__ import annotations

import math

import click

from ..cli_steps import StepCommand, grids_from_options, option_given, pipeline_from_options
from ..fusion import FUSIONS
from ._options import check_outputs, inputs_options, load_inputs_for, val_ids_of


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


@click.command("tune", cls=StepCommand, grids=True)
@inputs_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="pipeline YAML to write (for fuse --pipeline)")
@click.option("--budget", type=click.IntRange(min=1), default=40, show_default=True,
              help="most pipelines scored")
@click.option("--search", "search_kind", type=click.Choice(["random", "grid", "ascent"]), default="random",
              show_default=True, help="random: --budget points drawn from the grid; grid: every point (refused "
                                      "when more than --budget); ascent: models, fusion and weights, then each "
                                      "step (the given steps, else every built-in candidate) kept when it gains")
@click.option("--seed", type=int, default=0, show_default=True,
              help="seed of the random search, or of the ascent's random query halves (not with --search grid)")
@click.option("--cv-splits", type=click.IntRange(min=0), default=50, show_default=True,
              help="ascent: random halves of the split's queries on which weights tuned on one half are "
                   "scored on the other against equal weights; the better procedure sets the weights (0: always tune)")
@click.option("--objective", type=click.Choice(["mAP", "aic_map"]), default="mAP", show_default=True,
              help="score the best pipeline is chosen by")
@click.option("--weight-grid", default="0,0.5,1,2", show_default=True, callback=_weights,
              help="weight values tried per model")
@click.option("--fusions", default=",".join(FUSIONS), show_default=True, callback=_fusions,
              help="fusion methods tried (not with --fusion, which fixes the method)")
@click.pass_context
def command(ctx, **o):
    """Search fusion weights/method and step parameters (each --<step>-<key>-grid) on a labelled split;
    write the best pipeline."""
    from ..report import format_table
    from ..tune import SearchSpace, describe, plan_trials
    from ..tune import tune as run_tune

    pipe = pipeline_from_options(ctx, o)
    if o["fusion"] and option_given(ctx, "fusions"):
        raise click.UsageError("--fusion fixes the fusion method; --fusions lists the methods to try: give one")
    if o["search_kind"] == "grid" and option_given(ctx, "seed"):
        raise click.UsageError("--seed draws the points of a random search; --search grid tries every point")
    if o["search_kind"] == "ascent":
        return _ascent(o, pipe)
    if option_given(ctx, "cv_splits"):
        raise click.UsageError("--cv-splits belongs to --search ascent (it decides whether the ascent tunes the weights)")
    space = SearchSpace(weights=o["weight_grid"], fusions=[o["fusion"]] if o["fusion"] else o["fusions"],
                        grids=grids_from_options(ctx, pipe))
    plan_trials(pipe, space, budget=o["budget"], search=o["search_kind"], seed=o["seed"])
    check_outputs(("--out", o["out"]))
    inputs = load_inputs_for(o, pipe)
    trials = run_tune(inputs, pipe, space, budget=o["budget"], search=o["search_kind"], seed=o["seed"],
                      objective=o["objective"], topk=o["topk"], dense_rerank_max=o["dense_rerank_max"],
                      knn=o["knn"], log=click.echo)
    best, base = trials[0], next(t for t in trials if t.pipeline is pipe)
    click.echo("")
    click.echo(format_table([("base: " + describe(base.pipeline), base.scores)] +
                            [(f"#{i + 1}: " + describe(t.pipeline), t.scores) for i, t in enumerate(trials[:5])]))
    header = (f"written by `ensemble tune` on {inputs.dataset.name} at {inputs.dataset.root} ({len(trials)} trials, "
              f"{o['search_kind']} search, "
              f"seed {o['seed']})\n{o['objective']} {100 * best.objective:.2f} "
              f"(base pipeline {100 * base.objective:.2f}); tuned on the split it is scored on")
    best.pipeline.save(o["out"], header)
    click.echo(f"\nbest: {describe(best.pipeline)}")
    click.echo(f"wrote {o['out']} (use: ensemble fuse --pipeline {o['out']} ...)")


def _ascent(o: dict, pipe) -> None:
    """``--search ascent``: :func:`ensembles.tune.ascend`, its validation table, the pipeline with it."""
    from post_processing.features import FeatureFileError

    from ..pipeline import STEPS
    from ..report import format_validation
    from ..tune import CANDIDATES, ascend, describe

    check_outputs(("--out", o["out"]))
    candidates = ([(s.name, (dict(s.params),)) for s in pipe.steps] if pipe.steps else list(CANDIDATES))
    wants_train = any(STEPS.get(name).needs_train for name, _ in candidates)
    skipped = []
    try:
        inputs = load_inputs_for(o, pipe, train=wants_train)
    except FeatureFileError as exc:
        if not wants_train or pipe.steps:
            raise
        click.echo(f"note: the steps that learn on the training features are not tried: {exc}")
        skipped = [name for name, _ in candidates if STEPS.get(name).needs_train]
        candidates = [c for c in candidates if c[0] not in skipped]
        inputs = load_inputs_for(o, pipe, train=False)
    result = ascend(inputs, pipe.models, budget=o["budget"], objective=o["objective"], weights=o["weight_grid"],
                    fusions=[o["fusion"]] if o["fusion"] else o["fusions"], candidates=candidates,
                    topk=o["topk"], dense_rerank_max=o["dense_rerank_max"], log=click.echo, knn=o["knn"],
                    cv_splits=o["cv_splits"], seed=o["seed"])
    val_ids, val_seed = val_ids_of(o)
    table = result.table + [{"stage": "step", "label": name, "scores": None, "gain": None, "kept": False,
                             "why": "not tried: no training features (extract --split all)"} for name in skipped]
    best = result.pipeline
    best.validation = {"split": o["split"], "data_root": o["data_root"], "val_ids": val_ids, "val_seed": val_seed,
                       "objective": o["objective"], "trials": result.trials, "rows": table}
    click.echo("")
    click.echo(f"validation table ({o['split']} split; gain: the fusion over the best model, a step over the "
               f"pipeline without it):")
    click.echo(format_validation(table))
    header = (f"written by `ensemble tune --search ascent` on the {o['split']} split of {o['data_root']} "
              f"({result.trials} pipelines scored)")
    best.save(o["out"], header)
    click.echo(f"\nchosen: {describe(best)}")
    click.echo(f"wrote {o['out']} (use: ensemble fuse --pipeline {o['out']} ...)")
