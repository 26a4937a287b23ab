"""Benchmark: centroid triplet loss, centroid retrieval and low-resolution ReID on the synthetic benchmark.

Every model is the tiny CPU recipe (``global_model/configs/tiny_cpu.yml``: ResNet-18 from scratch,
48x64) trained for the same number of iterations (``--epochs`` x ``--iters``), so each pair of rows
has the same backbone, recipe and training time:

* HR queries: baseline vs ``+CTL loss`` (``ctl_tiny.yml``) vs ``+centroid retrieval`` (the
  ``centroid`` step on the baseline's features: per gallery track, which the AIC benchmark ships,
  and per gallery identity, the paper's oracle-label setting, with the query camera excluded);
* x4 low-resolution queries (``image_query_x4``, written here when the benchmark predates the
  views) against the normal gallery: baseline vs LR training (``lowres_tiny.yml``) vs octuplet
  fine-tuning (``lowres/configs/octuplet_tiny.yml`` from the baseline checkpoint); the fair control
  for the fine-tune is the baseline fine-tuned for the same iterations with the same schedule but
  without LR twins or octuplet loss (``fine-tune control``).

Runs are skipped when their ``model_final.pth`` exists (the script can be resumed). Results go to
``OUT/results.json`` and ``OUT/results.md``.

    nice -n 10 python scripts/bench/ctl_lowres.py   # the demo's data and r18 model (make demo)
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Dict, List

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, REPO)

from global_model.config import load_config  # noqa: E402
from global_model.data.dataset import build_test_split  # noqa: E402
from global_model.data.synth.lowres_views import query_view_root, write_lowres_views  # noqa: E402
from global_model.engine.extractor import extract_features, load_model_from_checkpoint  # noqa: E402
from global_model.engine.trainer import build_trainer  # noqa: E402
from post_processing.centroid import centroid_distances, group_ids  # noqa: E402
from post_processing.distance import pairwise_distance  # noqa: E402
from post_processing.evaluation import evaluate  # noqa: E402

CONFIGS = {
    "baseline": "global_model/configs/tiny_cpu.yml",
    "ctl": "global_model/configs/ctl_tiny.yml",
    "lowres": "global_model/configs/lowres_tiny.yml",
    "ft_control": "global_model/configs/tiny_cpu.yml",
    "octuplet": "global_model/lowres/configs/octuplet_tiny.yml",
}
# The fine-tuning schedule of octuplet_tiny.yml, given to the control run too.
FT_KEYS = ("SOLVER.OPTIMIZER", "SOLVER.BASE_LR", "SOLVER.SCHED", "SOLVER.STEPS", "SOLVER.GAMMA", "SOLVER.WARMUP_EPOCHS")


def _opts(args, out: str, epochs: int) -> List[str]:
    return ["DATASETS.ROOT", args.data, "OUTPUT_DIR", out, "SOLVER.MAX_EPOCHS", str(epochs),
            "SOLVER.ITERS_PER_EPOCH", str(args.iters), "SOLVER.EVAL_PERIOD", "0", "SOLVER.CHECKPOINT_PERIOD", "1",
            "SOLVER.SEED", str(args.seed), "DATALOADER.NUM_WORKERS", "0"]


def _finetune_opts(args, baseline_ckpt: str) -> List[str]:
    oct_cfg = load_config(os.path.join(REPO, CONFIGS["octuplet"]))
    opts = ["MODEL.WEIGHTS", baseline_ckpt]
    for key in FT_KEYS:
        node, leaf = key.split(".")
        value = oct_cfg[node][leaf]
        opts += [key, str(list(value) if isinstance(value, (list, tuple)) else value)]
    return opts


def train(name: str, args, extra: List[str], epochs: int) -> Dict[str, object]:
    out = os.path.join(args.out, "models", name)
    ckpt = os.path.join(out, "model_final.pth")
    timing = os.path.join(out, "train_seconds.json")
    if not os.path.isfile(ckpt):
        cfg = load_config(os.path.join(REPO, CONFIGS[name]), _opts(args, out, epochs) + extra)
        start = time.time()
        build_trainer(cfg, progress=False).train()
        with open(timing, "w") as f:
            json.dump({"seconds": round(time.time() - start, 1), "iterations": epochs * args.iters}, f)
    with open(timing) as f:
        return {"checkpoint": ckpt, **json.load(f)}


def extract(ckpt: str, root: str, lr_root: str) -> Dict[str, Dict[str, np.ndarray]]:
    """Features and labels of the HR queries (``hr``) and of the x4 queries (``x4``), one gallery."""
    model, cfg = load_model_from_checkpoint(ckpt, opts=["DATALOADER.NUM_WORKERS", "0"])
    splits, _ = build_test_split(cfg, root)
    q, g = splits["query"], splits["gallery"]
    lr_q = build_test_split(cfg, lr_root)[0]["query"]
    assert [r.name for r in lr_q] == [r.name for r in q]
    hr = {"qf": extract_features(model, q, cfg, progress=False, split="query")[1],
          "gf": extract_features(model, g, cfg, progress=False, split="gallery")[1],
          "q_pids": np.array([r.pid for r in q]), "g_pids": np.array([r.pid for r in g]),
          "q_cams": np.array([r.camid for r in q]), "g_cams": np.array([r.camid for r in g]),
          "g_tracks": np.array([r.trackid for r in g])}
    return {"hr": hr, "x4": {**hr, "qf": extract_features(model, lr_q, cfg, progress=False, split="query")[1]}}


def score(dist: np.ndarray, f: Dict[str, np.ndarray]) -> Dict[str, float]:
    res = evaluate(dist, f["q_pids"], f["g_pids"], f["q_cams"], f["g_cams"])
    return {"mAP": round(100 * float(res["mAP"]), 2), "rank1": round(100 * float(res["cmc"][0]), 2)}


def plain(f) -> Dict[str, float]:
    return score(pairwise_distance(f["qf"], f["gf"], "euclidean"), f)


def centroid(f, group: str, exclude: bool) -> Dict[str, float]:
    keys = f["g_tracks"] if group == "track" else f["g_pids"]
    d = centroid_distances(f["qf"], f["gf"], group_ids(keys), "euclidean", f["q_cams"], f["g_cams"], exclude)
    return score(d, f)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="outputs/demo/data", help="synthetic benchmark (AIC20 layout; from make demo)")
    p.add_argument("--out", default="outputs/bench_ctl_lowres")
    p.add_argument("--epochs", type=int, default=8, help="epochs of the runs from scratch")
    p.add_argument("--ft-epochs", type=int, default=2, help="epochs of the fine-tuning runs")
    p.add_argument("--iters", type=int, default=30, help="iterations per epoch (every run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", default="outputs/demo/models/r18/model_final.pth",
                   help="a model trained with the full recipe, scored plain and with centroid retrieval for "
                        "reference (no training; '' to skip)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.data = os.path.abspath(args.data)
    os.makedirs(args.out, exist_ok=True)

    views = args.data
    if not os.path.isdir(os.path.join(args.data, "image_query_x4")):
        views = os.path.join(args.out, "views")
        if not os.path.isdir(os.path.join(views, "image_query_x4")):
            with open(os.path.join(args.data, "name_query.txt")) as f:
                write_lowres_views(args.data, [n.strip() for n in f if n.strip()], (4,), out_root=views)
    lr_root = query_view_root(args.data, 4, os.path.join(args.out, "data_x4"), views=views)

    runs = {"baseline": train("baseline", args, [], args.epochs),
            "ctl": train("ctl", args, [], args.epochs),
            "lowres": train("lowres", args, [], args.epochs)}
    base_ckpt = runs["baseline"]["checkpoint"]
    for name in ("ft_control", "octuplet"):
        runs[name] = train(name, args, _finetune_opts(args, base_ckpt), args.ft_epochs)

    feats = {name: extract(r["checkpoint"], args.data, lr_root) for name, r in runs.items()}
    b = feats["baseline"]["hr"]
    hr_rows = [
        ("baseline", plain(b)),
        ("+CTL loss", plain(feats["ctl"]["hr"])),
        ("+centroid retrieval (tracks)", centroid(b, "track", False)),
        ("+centroid retrieval (gallery ids, query camera excluded)", centroid(b, "id", True)),
        ("+CTL loss +centroid retrieval (tracks)", centroid(feats["ctl"]["hr"], "track", False)),
    ]
    lr_rows = [(label, plain(feats[name]["x4"]), plain(feats[name]["hr"]))
               for label, name in (("baseline", "baseline"), ("LR training (x2/x4, p=0.5)", "lowres"),
                                   ("fine-tune control (+%d epochs, HR only)" % args.ft_epochs, "ft_control"),
                                   ("octuplet fine-tuning (+%d epochs, x4 twins)" % args.ft_epochs, "octuplet"))]
    if args.reference and os.path.isfile(args.reference):
        ref = extract(args.reference, args.data, lr_root)
        hr_rows += [("reference: full tiny recipe", plain(ref["hr"])),
                    ("reference +centroid retrieval (tracks)", centroid(ref["hr"], "track", False)),
                    ("reference +centroid retrieval (gallery ids, query camera excluded)",
                     centroid(ref["hr"], "id", True))]
        lr_rows.append(("reference: full tiny recipe", plain(ref["x4"]), plain(ref["hr"])))
    result = {"settings": vars(args), "runs": runs, "hr": hr_rows, "x4": lr_rows}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    lines = [f"Training: {args.epochs} x {args.iters} iterations from scratch (fine-tunes: +{args.ft_epochs} x "
             f"{args.iters}), seed {args.seed}.", "", "| HR queries | mAP | R1 |", "|---|---|---|"]
    lines += [f"| {label} | {m['mAP']:.1f} | {m['rank1']:.1f} |" for label, m in hr_rows]
    lines += ["", "| x4 low-res queries | mAP x4 | R1 x4 | mAP HR | R1 HR |", "|---|---|---|---|---|"]
    lines += [f"| {label} | {m['mAP']:.1f} | {m['rank1']:.1f} | {h['mAP']:.1f} | {h['rank1']:.1f} |"
              for label, m, h in lr_rows]
    lines += ["", "| run | training s |", "|---|---|"] + [f"| {n} | {r['seconds']} |" for n, r in runs.items()]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
