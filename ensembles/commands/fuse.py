"""``ensemble fuse``: fuse several models' features, post-process, write the ranking (AIC20: track2.txt;
other datasets: a ranking file) and the metrics."""
from __future__ import annotations

import time

import click

from post_processing.fileio import write_together

from ..cli_steps import StepCommand, pipeline_from_options
from ._options import check_outputs, inputs_options, load_inputs_for, write_result


@click.command("fuse", cls=StepCommand)
@inputs_options
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="ranking to write: track2.txt for AIC20, else a ranking file (query name, then its top-K "
                   "gallery names per line)")
@click.option("--metrics-out", type=click.Path(dir_okay=False), help="metrics JSON to write")
@click.option("--save-pipeline", type=click.Path(dir_okay=False), help="also write the pipeline that ran as YAML")
@click.pass_context
def command(ctx, **o):
    """Fuse several models' features, post-process, and write track2.txt or a ranking file (+ metrics with
    ground truth)."""
    from ..report import format_table, tuner_summary, write_json
    from ..run import metrics_json, run_ensemble
    from ..tune import replay_dropped, replay_needs_train

    t0 = time.perf_counter()
    pipe = pipeline_from_options(ctx, o)
    check_outputs(("--out", o["out"]), ("--metrics-out", o["metrics_out"]), ("--save-pipeline", o["save_pipeline"]))
    inputs = load_inputs_for(o, pipe, train=pipe.needs_train or replay_needs_train(pipe))
    click.echo(f"pipeline: {pipe.fusion} fusion, {pipe.distance} distance, steps: "
               f"{', '.join(s.label() for s in pipe.steps) or '(none)'}")
    result = run_ensemble(inputs, pipe, topk=o["topk"], dense_rerank_max=o["dense_rerank_max"], knn=o["knn"])
    for note in result.notes:
        click.echo(f"note: {note}")
    dropped = []
    if pipe.validation and result.fusion is not None:
        dropped = replay_dropped(inputs, pipe, o["topk"], o["dense_rerank_max"], o["knn"])
    with write_together():
        write_result(o["out"], inputs.dataset, result.ranking, o["topk"])
        if o["metrics_out"]:
            write_json(o["metrics_out"], {**metrics_json(result, pipe, inputs, o["topk"], o["out"]),
                                          "dropped_steps": dropped})
        if o["save_pipeline"]:
            pipe.save(o["save_pipeline"])
    if result.fusion is not None:
        click.echo("")
        click.echo(format_table(*result.rows(pipe)))
        click.echo("")
        if pipe.validation:
            click.echo(tuner_summary(pipe.validation))
            click.echo("")
        if dropped:
            click.echo("steps the tuner dropped (no gain on validation), added to this pipeline here for the record:")
            click.echo(format_table([(d["label"], d["scores"]) for d in dropped], [d["gain"] for d in dropped]))
            click.echo("")
    else:
        click.echo("no ground truth (AIC20: query_label.xml / test_label.xml; others: query ids): no metrics")
    click.echo(f"wrote {o['out']} ({len(result.ranking)} queries x {o['topk']})")
    if o["metrics_out"]:
        click.echo(f"wrote {o['metrics_out']}")
    if o["save_pipeline"]:
        click.echo(f"wrote {o['save_pipeline']}")
    click.echo(f"fuse took {time.perf_counter() - t0:.1f} s")
