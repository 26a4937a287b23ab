"""``ensemble search``: top-k gallery matches for a folder of query images."""
from __future__ import annotations

import click

from post_processing.distance import METRICS

from ._options import check_outputs, knn_option


@click.command("search")
@click.option("--gallery-features", type=click.Path(dir_okay=False),
              help="gallery feature file (.pkl or .npz); or --index")
@click.option("--index", "index_file", type=click.Path(exists=True, dir_okay=False),
              help="gallery index from `ensemble index build` instead of --gallery-features (its distance is used)")
@knn_option("gallery search with --gallery-features")
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
@click.pass_context
def command(ctx, gallery_features, index_file, knn, query_dir, checkpoint, config, query_features, data_root, gallery_dir,
            topk, distance, out):
    """Top-k gallery matches for a folder of query images; writes a CSV (query, id, path, distance, rank)."""
    from post_processing.features import load_features

    from ..search import (extract_query_features, gallery_records, query_image_paths, result_rows,
                         search as run_search, write_result_csv)

    check_outputs(("--out", out))
    if bool(gallery_features) == bool(index_file):
        raise click.UsageError("give either --gallery-features or --index")
    if index_file and knn:
        raise click.UsageError("--knn chooses how --gallery-features are searched; an --index has its own backend")
    if query_features:
        if query_dir or checkpoint:
            raise click.UsageError("give either --query-features or --query-dir with --checkpoint, not both")
        qs = load_features(query_features)
        q_names, qf = qs.names, qs.feats
    elif query_dir and checkpoint:
        q_names, qf = extract_query_features(query_image_paths(query_dir), checkpoint, config)
    else:
        raise click.UsageError("give --query-dir with --checkpoint, or --query-features")
    if index_file:
        from ..index import load_gallery_index

        index = load_gallery_index(index_file)
        if ctx.get_parameter_source("distance") == click.core.ParameterSource.COMMANDLINE \
                and distance != index.meta.get("metric"):
            raise click.UsageError(f"--distance {distance}: {index_file} searches with {index.meta.get('metric')}")
        gallery = gallery_records(index.names, index_file, data_root, gallery_dir)
        idx, dist = index.search(qf, topk)
    else:
        gs = load_features(gallery_features)
        gallery = gallery_records(gs.names, gallery_features, data_root, gallery_dir)
        idx, dist = run_search(qf, gs.feats, topk, distance, query_source=query_features or query_dir,
                               gallery_source=gallery_features, knn=knn)
    write_result_csv(out, result_rows(q_names, idx, dist, gallery))
    click.echo(f"wrote {out} ({len(q_names)} queries x top-{idx.shape[1]})")
