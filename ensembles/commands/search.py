"""`ensemble search`: the top-k gallery matches of each query image, for folders of images or feature files.

Writes ``result.csv``, ``results.json`` and ``ranklist.png`` into ``--out`` (see :mod:`ensembles.search`);
trailing ``KEY VALUE`` pairs override the checkpoint's config for the extraction.
"""
from __future__ import annotations

import os
import time

import click

from global_model.commands import OVERRIDES, checkpoint_option, run_options
from post_processing.distance import METRICS
from post_processing.fileio import write_together

from ..cli_steps import ParamValue
from ..pipeline import STEPS
from ._options import check_outputs, knn_option

_RERANK = STEPS.get("rerank").params  # the step's parameters: same checks and defaults as fuse's --rerank


def _rerank_help(key: str) -> str:
    return f"rerank: {_RERANK[key].help}  [default: {_RERANK[key].default}]"


@click.command("search", context_settings=OVERRIDES,
               short_help="top-k gallery matches of query images (folders or features)")
@checkpoint_option("model that extracts the features of --query-dir/--gallery-dir images", required=False)
@click.option("--config", type=click.Path(dir_okay=False),
              help="model YAML (default: the one stored in the checkpoint)")
@click.option("--query-dir", type=click.Path(file_okay=False),
              help="folder of query images, searched recursively (with --query-features: where its images are)")
@click.option("--query-features", type=click.Path(dir_okay=False),
              help="precomputed query features (.pkl/.npz) instead of extracting --query-dir")
@click.option("--gallery-dir", type=click.Path(file_okay=False),
              help="folder of gallery images, searched recursively (with --gallery-features: where its images are)")
@click.option("--gallery-features", type=click.Path(dir_okay=False),
              help="precomputed gallery features (.pkl/.npz) instead of extracting --gallery-dir")
@click.option("--index", "index_file", type=click.Path(exists=True, dir_okay=False),
              help="gallery index from `ensemble index build` instead of --gallery-features (searched with its "
                   "own backend and distance)")
@knn_option("the search of --gallery-features/--gallery-dir (default exact)")
@click.option("--dataset", help="dataset entry the feature files come from (name, name=PATH or name(key=value)=PATH; "
                                "default aic20 at --data-root): image paths and identities (its ground truth)")
@click.option("--data-root", type=click.Path(file_okay=False),
              help="folder of that dataset when --dataset names no PATH (AIC20 layout by default)")
@click.option("--folder-ids", is_flag=True,
              help="the first folder under --query-dir/--gallery-dir names each image's identity (DIR/<id>/x.jpg)")
@click.option("--topk", type=click.IntRange(min=1), default=10, show_default=True, help="gallery matches per query")
@click.option("--distance", type=click.Choice(METRICS), default="cosine", show_default=True,
              help="distance between features")
@click.option("--rerank/--no-rerank", default=False, help="k-reciprocal re-ranking of the top-k (default off)")
@click.option("--k1", type=ParamValue(_RERANK["k1"]), help=_rerank_help("k1"))
@click.option("--k2", type=ParamValue(_RERANK["k2"]), help=_rerank_help("k2"))
@click.option("--lambda", "lambda_", type=ParamValue(_RERANK["lambda"]), help=_rerank_help("lambda"))
@click.option("--device", help="device of the extraction (cpu, cuda, cuda:1); sets MODEL.DEVICE")
@click.option("--ranklist-queries", type=click.IntRange(min=0), default=8, show_default=True,
              help="queries drawn in ranklist.png (worst AP first when query identities are known; 0: no picture)")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="folder to write result.csv, results.json and ranklist.png into")
@run_options("TEST.IMS_PER_BATCH 32 TEST.FLIP False (for the extraction)")
def command(**o):
    """Top-k gallery matches per query image: folders (recursive) or feature files on either side.

    Writes result.csv (query_filename, predicted_id, predicted_path, distance, rank), results.json
    (top-k per query with paths, ids, distances, AP) and ranklist.png into --out; prints top-1
    accuracy when the query identities are known. Trailing KEY VALUE pairs override the model's
    config for the extraction (e.g. TEST.IMS_PER_BATCH 32 TEST.FLIP False).
    """
    from .. import search as lib
    from ..visualize import ranklist_grid, select_queries, view_of_results

    t0 = time.perf_counter()
    o["distance_given"] = click.get_current_context().get_parameter_source("distance") \
        == click.core.ParameterSource.COMMANDLINE
    rerank = _rerank_params(o)
    _check_sides(o)
    outputs = {name: os.path.join(o["out"], name) for name in ("result.csv", "results.json", "ranklist.png")}
    check_outputs(*(("--out", p) for p in outputs.values()))
    query, gallery = _side(o, "query"), _side(o, "gallery")
    extracting = [s for s in (query, gallery) if not s.ready]
    opts = [*o["opts"], *(("MODEL.DEVICE", o["device"]) if o["device"] else ())]
    if extracting:
        lib.extract(extracting, o["checkpoint"], o["config"], opts, progress=not o["no_progress"])
    for side in (query, gallery):
        click.echo(f"{'query' if side is query else 'gallery'}: {len(side.names)} images from {side.source}"
                   f"{'' if side.has_ids else ', identities unknown'}")
    if o["index_file"]:
        idx, dist = lib.search_index(query.feats, gallery.index, o["topk"], o["index_file"])
    else:
        idx, dist = lib.search(query.feats, gallery.feats, o["topk"], o["distance"], query.source, gallery.source,
                               rerank, o["knn"])
    scores = lib.query_scores(query, gallery, idx)
    settings = {"distance": o["distance"], "rerank": rerank, "knn": o["knn"], "index": o["index_file"],
                "topk": int(idx.shape[1]),
                "checkpoint": o["checkpoint"] if extracting else None}
    doc = lib.results_document(query, gallery, idx, dist, scores, settings)
    view = view_of_results(doc)
    drawn = select_queries(view, o["ranklist_queries"]) if o["ranklist_queries"] else []
    unseen = next((p for q in drawn for p in (view.query_paths[q], *(view.gallery_paths[g] for g in view.ranking[q]))
                   if not os.path.isfile(p)), None)
    if unseen:
        click.echo(f"note: no ranklist.png: image {unseen} not found (give --query-dir/--gallery-dir or --data-root "
                   f"with feature files to say where their images are)")
        drawn = []
    with write_together():
        lib.write_result_csv(outputs["result.csv"], lib.result_rows(query.names, idx, dist, gallery))
        lib.write_results_json(outputs["results.json"], doc)
        if drawn:
            ranklist_grid(outputs["ranklist.png"], view, drawn, o["topk"])
    if scores:
        mean_ap = "n/a" if scores["mAP"] is None else f"{100 * scores['mAP']:.2f}%"
        click.echo(f"top-1 accuracy: {100 * scores['top1_accuracy']:.2f}% over {scores['counted']} queries with "
                   f"known identity (mAP of the top-{idx.shape[1]}: {mean_ap})")
    click.echo(f"wrote {outputs['result.csv']} and {outputs['results.json']} "
               f"({len(query.names)} queries x top-{idx.shape[1]})")
    if drawn:
        click.echo(f"wrote {outputs['ranklist.png']} ({len(drawn)} queries, "
                   f"{'worst AP first' if view.has_ap else 'spread over the list'})")
    click.echo(f"search took {time.perf_counter() - t0:.1f} s")


def _rerank_params(o):
    given = [f"--{k}" for k, key in (("k1", "k1"), ("k2", "k2"), ("lambda", "lambda_")) if o[key] is not None]
    if not o["rerank"]:
        if given:
            raise click.UsageError(f"{given[0]} sets a parameter of re-ranking; add --rerank")
        return None
    return {"k1": o["k1"] if o["k1"] is not None else _RERANK["k1"].default,
            "k2": o["k2"] if o["k2"] is not None else _RERANK["k2"].default,
            "lambda": o["lambda_"] if o["lambda_"] is not None else _RERANK["lambda"].default}


def _check_sides(o) -> None:
    """Usage checks before anything is read: each side given, and every option used by some side."""
    extracted, folders, from_dataset = [], [], []
    if o["index_file"]:
        if o["gallery_features"]:
            raise click.UsageError("give either --gallery-features or --index")
        for flag, key in (("--knn", "knn"), ("--rerank", "rerank")):
            if o[key]:
                raise click.UsageError(f"{flag} works on gallery features; an --index is searched with its own backend")
    if o["rerank"] and o["knn"]:
        raise click.UsageError("--rerank ranks by exact k-reciprocal distances; --knn applies without it")
    for name in ("query", "gallery"):
        folder = o[f"{name}_dir"]
        features = o[f"{name}_features"] or (o["index_file"] if name == "gallery" else None)
        if not folder and not features:
            raise click.UsageError(f"give --{name}-dir (images, with --checkpoint) or --{name}-features")
        if folder:
            folders.append(name)
        if not features:
            extracted.append(f"--{name}-dir")
        elif not folder:
            from_dataset.append(name)
    if extracted and not o["checkpoint"]:
        raise click.UsageError(f"extracting {' and '.join(extracted)} needs --checkpoint")
    if not extracted:
        for name in ("checkpoint", "config", "device"):
            if o[name]:
                raise click.UsageError(f"--{name} is for extraction, but both sides are feature files")
        if o["opts"]:
            raise click.UsageError("KEY VALUE overrides are for extraction, but both sides are feature files")
    if o["folder_ids"] and not folders:
        raise click.UsageError("--folder-ids reads identities from --query-dir/--gallery-dir; neither is given")
    if (o["data_root"] or o["dataset"]) and not from_dataset:
        raise click.UsageError("--dataset/--data-root give the images of a feature file given without its folder; "
                               "no side is one")


def _side(o, name: str):
    """The query or gallery side the options describe (features not yet extracted for a folder)."""
    from .. import search as lib

    folder, features = o[f"{name}_dir"], o[f"{name}_features"]
    if name == "gallery" and o["index_file"]:
        side = lib.index_side(o["index_file"], None if folder else o["data_root"], folder,
                              o["folder_ids"] and bool(folder), None if folder else o["dataset"])
        metric = side.index.meta.get("metric")
        if o["distance_given"] and o["distance"] != metric:
            raise click.UsageError(f"--distance {o['distance']}: {o['index_file']} searches with {metric}")
        o["distance"] = metric
        return side
    if features:
        return lib.feature_side(features, name, None if folder else o["data_root"], folder,
                                o["folder_ids"] and bool(folder), None if folder else o["dataset"])
    return lib.folder_side(folder, o["folder_ids"])
