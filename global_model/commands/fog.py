"""``python -m global_model fog``: add synthetic fog to a folder of clear images (FVRID-style clear/foggy pairs)."""
from __future__ import annotations

import argparse
import os

HELP = "add synthetic fog to a folder of clear images (FVRID-style pairs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", required=True, help="folder of clear images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder; gets <split>_clear/ and <split>_foggy/")
    parser.add_argument("--depth-dir", default=None,
                        help="depth maps named like the images (same sub-folders, <stem>.png 8/16-bit or "
                             "<stem>.npy); default: a ground-plane depth prior")
    parser.add_argument("--inverse-depth", action="store_true",
                        help="the depth maps are disparity / inverse depth (larger = nearer)")
    parser.add_argument("--split", default="train", help="FVRID split prefix: train, query or gallery")
    parser.add_argument("--seed", type=int, default=0, help="seed for the per-image beta and airlight")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="processes")


def run(args: argparse.Namespace) -> int:
    from global_model.data.fog import fog_folder  # OpenCV: imported only when the command runs

    summary = fog_folder(args.src, args.out, depth_dir=args.depth_dir, split=args.split, seed=args.seed,
                         inverse_depth=args.inverse_depth, workers=max(1, args.workers))
    print(f"fogged {summary['images']} images ({summary['depth']}) in {summary['seconds']} s: "
          f"{summary['clear_dir']} + {summary['foggy_dir']} "
          f"(mean beta {summary['beta_mean']}, mean A {summary['airlight_mean']})")
    return 0
