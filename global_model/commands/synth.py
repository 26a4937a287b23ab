"""``python -m global_model synth``: generate the synthetic foggy-vehicle benchmark (AIC20 layout + FVRID view)."""
from __future__ import annotations

import argparse
import os

HELP = "generate the synthetic foggy-vehicle benchmark (AIC20 layout)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (AIC20 layout + fvrid/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ids", type=int, default=240, help="identities, train + test")
    parser.add_argument("--test-ids", type=int, default=None, help="of which test identities (default: half)")
    parser.add_argument("--size", type=int, nargs=2, default=(96, 128), metavar=("H", "W"), help="image size")
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--real-ids", type=int, default=None,
                        help="identities of the FVRID_real view (default max(4, ids // 4); 0 = none)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="rendering processes (the output does not depend on it)")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty folder that is not an earlier synth output (its "
                             "image folders, name lists and labels are replaced)")


def run(args: argparse.Namespace) -> int:
    from global_model.data.synth import format_summary, generate  # OpenCV: imported only when the command runs

    summary = generate(args.out, seed=args.seed, ids=args.ids, size=tuple(args.size), cameras=args.cameras,
                       real_ids=args.real_ids, workers=max(1, args.workers), test_ids=args.test_ids,
                       force=args.force)
    print(format_summary(summary, os.path.abspath(args.out)))
    return 0
