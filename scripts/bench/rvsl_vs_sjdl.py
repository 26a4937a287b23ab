"""Benchmark: RVSL vs SJDL vs the plain global model (ResNet-18, tiny CPU recipes) on the foggy queries
of the synthetic benchmark, training time beside mAP, and RVSL fused with the others.

The benchmark needs its ``fvrid/FVRID_clear`` view (``python -m global_model synth`` writes it; the
other files are byte-identical to an older synth output of the same seed). RVSL is trained with
``global_model/rvsl/configs/rvsl_tiny.yml`` unless ``--rvsl-dir`` already holds ``model_final.pth``;
the r18 and sjdl_r18 models and features are the demo's (``--models-dir``, ``--features-dir``).
RVSL's features are extracted for each ``TEST.RVSL_PATH`` (hazy, clear, mean), then ``ensemble fuse``
scores every model alone (mAP on all queries and on the foggy ones) and the fusions
r18+sjdl_r18 and r18+sjdl_r18+rvsl_r18 (mean path). Training time: the sum of the epoch times each
model's ``log.txt`` reports (validation excluded), and the wall time from its first to its last
line; models trained at other times ran under other machine loads (the table says when).

    python scripts/bench/rvsl_vs_sjdl.py --data outputs/demo_data --out outputs/bench/rvsl
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

BASELINES = ("r18", "sjdl_r18")
PATHS = {"rvsl_r18_hazy": "hazy", "rvsl_r18_clear": "clear", "rvsl_r18": "mean"}
CONFIG = "global_model/rvsl/configs/rvsl_tiny.yml"
_EPOCH = re.compile(r"^(\d\d):(\d\d):(\d\d) epoch \d+/\d+ .* ([\d.]+)s \(")
_STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d) ")


def train_times(log: str) -> Tuple[float, float, str]:
    """(sum of the logged epoch seconds, wall seconds first→last line, start clock) of a ``log.txt``."""
    epochs, stamps = 0.0, []
    with open(log, encoding="utf-8") as f:
        for line in f:
            m = _EPOCH.match(line)
            if m:
                epochs += float(m.group(4))
            s = _STAMP.match(line)
            if s:
                stamps.append(int(s.group(1)) * 3600 + int(s.group(2)) * 60 + int(s.group(3)))
    wall = 0.0
    for a, b in zip(stamps, stamps[1:]):
        wall += (b - a) % 86400  # a run past midnight
    start = open(log, encoding="utf-8").readline()[:8]
    return epochs, wall, start


def _run(cmd: List[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def _fuse(models: List[str], data: str, feats: str, out: str) -> Dict:
    metrics = os.path.join(out, f"fuse_{'+'.join(models)}.json")
    _run([sys.executable, "-c", "import sys; from ensembles.cli import main; sys.exit(main())", "fuse",
          "--models", ",".join(models), "--data-root", data, "--features-dir", feats,
          "--out", os.path.join(out, f"track2_{'+'.join(models)}.txt"), "--metrics-out", metrics])
    with open(metrics, encoding="utf-8") as f:
        return json.load(f)


def _row(name: str, s: Dict, times: Optional[Tuple[float, float, str]]) -> str:
    t = f"{times[0] / 60:.1f} / {times[1] / 60:.1f} (started {times[2]})" if times else "-"
    return (f"| {name} | {100 * s['mAP']:.2f} | {100 * s['mAP_foggy']:.2f} | {100 * s['rank1']:.2f} | "
            f"{t} |")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="outputs/demo_data", help="synthetic benchmark with fvrid/FVRID_clear")
    p.add_argument("--models-dir", default="/work/data/demo/models", help="demo models (r18, sjdl_r18)")
    p.add_argument("--features-dir", default="/work/data/demo/features", help="demo features (r18, sjdl_r18)")
    p.add_argument("--rvsl-dir", default="outputs/bench/rvsl_r18", help="RVSL run (trained here when absent)")
    p.add_argument("--out", default="outputs/bench/rvsl", help="features, metrics and results.md")
    a = p.parse_args(argv)
    feats = os.path.join(a.out, "features")
    os.makedirs(feats, exist_ok=True)
    final = os.path.join(a.rvsl_dir, "model_final.pth")
    if not os.path.isfile(final):
        _run([sys.executable, "-m", "global_model", "train", "--config", CONFIG, "--no-progress",
              "DATASETS.ROOT", a.data, "OUTPUT_DIR", a.rvsl_dir])
    for name in BASELINES:
        for side in ("query", "gallery"):
            shutil.copyfile(os.path.join(a.features_dir, f"{side}_{name}.pkl"), os.path.join(feats, f"{side}_{name}.pkl"))
    extract_s = {}
    for name, path in PATHS.items():
        t = time.perf_counter()
        _run([sys.executable, "-m", "global_model", "extract", "--checkpoint", final, "--data-root", a.data,
              "--out-dir", feats, "--name", name, "--no-progress", "TEST.RVSL_PATH", path])
        extract_s[name] = time.perf_counter() - t
    alone = _fuse(list(BASELINES) + list(PATHS), a.data, feats, a.out)["per_model"]
    pair = _fuse(list(BASELINES), a.data, feats, a.out)["fusion"]
    triple = _fuse(list(BASELINES) + ["rvsl_r18"], a.data, feats, a.out)["fusion"]
    times = {name: train_times(os.path.join(a.models_dir, name, "log.txt")) for name in BASELINES}
    times["rvsl_r18"] = train_times(os.path.join(a.rvsl_dir, "log.txt"))
    lines = ["| model | mAP | mAP foggy q | rank-1 | train min: epochs / wall |", "|---|---|---|---|---|"]
    for name in list(BASELINES) + list(PATHS):
        lines.append(_row(f"{name}" + (f" (TEST.RVSL_PATH {PATHS[name]})" if name in PATHS else ""), alone[name],
                          times.get(name)))
    lines.append(_row("fusion r18 + sjdl_r18", pair, None))
    lines.append(_row("fusion r18 + sjdl_r18 + rvsl_r18", triple, None))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(a.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    print("extraction s: " + ", ".join(f"{k} {v:.1f}" for k, v in extract_s.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
