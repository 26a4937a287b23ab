"""``ensemble index build|add``: a persistent gallery index for ``ensemble search --index``."""
from __future__ import annotations

import click

from post_processing.distance import METRICS

from ._options import check_outputs, knn_option


@click.group("index")
def command():
    """Build or grow a gallery index file (faiss or exact) that `ensemble search --index` searches."""


@command.command("build")
@click.option("--features", required=True, type=click.Path(dir_okay=False), help="gallery feature file (.pkl or .npz)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="index file to write (e.g. gallery.index)")
@knn_option("index backend")
@click.option("--distance", type=click.Choice(METRICS), default="cosine", show_default=True,
              help="distance the index searches with")
def build(features, out, knn, distance):
    """Index a gallery feature file."""
    from post_processing.features import load_features

    from ..index import build_gallery_index, save_gallery_index

    check_outputs(("--out", out))
    gallery = build_gallery_index(load_features(features), knn, distance)
    save_gallery_index(out, gallery)
    click.echo(f"wrote {out} ({len(gallery.names)} images, {gallery.index.dim}-d, --knn {gallery.meta['knn']}, "
               f"{distance})")


@command.command("add")
@click.option("--index", "index_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="index written by `ensemble index build`")
@click.option("--features", required=True, type=click.Path(dir_okay=False),
              help="feature file of the new gallery images (same model)")
@click.option("--out", type=click.Path(dir_okay=False), help="write here instead of replacing --index")
def add(index_file, features, out):
    """Add new gallery images to an index; earlier images keep their ids."""
    from post_processing.features import load_features

    from ..index import add_to_index, load_gallery_index, save_gallery_index

    out = out or index_file
    check_outputs(("--out", out))
    gallery = load_gallery_index(index_file)
    added = add_to_index(gallery, load_features(features))
    save_gallery_index(out, gallery)
    click.echo(f"wrote {out} ({added} images added, {len(gallery.names)} in all)")
