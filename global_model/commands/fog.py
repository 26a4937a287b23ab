"""``python -m global_model fog``: add synthetic fog to a folder of clear images (FVRID-style clear/foggy pairs)."""
from __future__ import annotations

import os

import click


@click.command(short_help="add synthetic fog to a folder of clear images (FVRID-style pairs)")
@click.option("--src", required=True, type=click.Path(file_okay=False), help="folder of clear images (searched recursively)")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="output folder; gets <split>_clear/ and <split>_foggy/")
@click.option("--depth-dir", default=None, type=click.Path(file_okay=False),
              help="depth maps named like the images (same sub-folders, <stem>.png 8/16-bit or <stem>.npy); "
                   "default: a ground-plane depth prior")
@click.option("--inverse-depth", is_flag=True, help="the depth maps are disparity / inverse depth (larger = nearer)")
@click.option("--split", default="train", show_default=True, help="FVRID split prefix: train, query or gallery")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for the per-image beta and airlight")
@click.option("--workers", type=int, default=min(4, os.cpu_count() or 1), show_default=True, help="processes")
def command(src, out, depth_dir, inverse_depth, split, seed, workers) -> int:
    """Add synthetic fog to a folder of clear images, writing FVRID-style clear/foggy pairs."""
    from global_model.data.fog import fog_folder  # OpenCV: imported only when the command runs

    summary = fog_folder(src, out, depth_dir=depth_dir, split=split, seed=seed, inverse_depth=inverse_depth,
                         workers=max(1, workers))
    click.echo(f"fogged {summary['images']} images ({summary['depth']}) in {summary['seconds']} s: "
               f"{summary['clear_dir']} + {summary['foggy_dir']} "
               f"(mean beta {summary['beta_mean']}, mean A {summary['airlight_mean']})")
    return 0
