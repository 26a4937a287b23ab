"""Benchmark: k-reciprocal re-ranking against the plain-numpy implementation, in the same run.

For each scale, seeded clustered 2048-d features are generated and every method runs once in its
own fresh subprocess (so peak RSS is its own):

* ``numpy``: ``post_processing.rerank.reference_re_ranking``, the numpy transcription the tests
  check against, with numpy's default (quicksort) argsort as in the widely used code: the speed
  baseline;
* ``numpy-stable``: the same with a stable argsort, the tie order ``post_processing.rerank``
  implements: the ranking baseline (a row of ~20,000 normalised float32 distances does hold
  exact ties, which quicksort orders arbitrarily);
* ``matrix``: ``re_ranking`` on the same distance matrices;
* ``features``: ``re_ranking_features`` from the features; its time includes computing the
  distances, which the others get precomputed (that cost is printed per scale).

Times are wall-clock ("cpu s": CPU seconds of all the worker's threads, which shows how much of
the machine the method got when other jobs compete for it). They exclude numba compilation: each
worker warms up on a tiny input first, and a separate worker with an empty numba cache measures
the cold compile. Peak RSS includes the inputs (features or distance matrices); "inputs" is the
RSS just before the method starts. The distance matrices are
``post_processing.distance.pairwise_distance`` outputs with q×q and g×g made exactly symmetric
(upper triangle mirrored), which is how ``re_ranking_features`` defines them.

    python scripts/bench/rerank.py                       # 500×5000, VeRi-776, AIC20
    python scripts/bench/rerank.py --scales veriwild     # 10,000×128,517 (features only)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Idle numba (OpenMP) threads sleep instead of spinning, which slows every launch; numba loads later.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

ROOT = Path(__file__).resolve().parents[2]
SCALES = {  # name: (queries, gallery)
    "small": (500, 5000),
    "veri776": (1678, 11579),
    "aic20": (1052, 18290),
    "veriwild": (10000, 128517),
}
TOPK = 100
IMAGES_PER_ID = 50
NOISE = 1.0


def make_features(q, g, dim, seed):
    """L2-normalised features around one random centre per identity (≈50 images each)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, g // IMAGES_PER_ID), dim), dtype=np.float32)

    def draw(n):
        ids = rng.integers(0, len(centres), n)
        out = np.empty((n, dim), np.float32)
        for s in range(0, n, 8192):
            x = centres[ids[s:s + 8192]] + NOISE * rng.standard_normal((len(ids[s:s + 8192]), dim), dtype=np.float32)
            out[s:s + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return draw(q), draw(g)


def mirror_inplace(d, block=2048):
    """Copy the upper triangle onto the lower one, a block at a time (no N² temporaries)."""
    for s in range(0, len(d), block):
        e = min(len(d), s + block)
        d[s:e, :s] = d[:s, s:e].T
        d[s:e, s:e] = np.triu(d[s:e, s:e]) + np.triu(d[s:e, s:e], 1).T


def distance_matrices(Q, G):
    from post_processing.distance import pairwise_distance
    q_q = pairwise_distance(Q, Q)
    mirror_inplace(q_q)
    g_g = pairwise_distance(G, G)
    mirror_inplace(g_g)
    return pairwise_distance(Q, G), q_q, g_g


def rss_now_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def topk_rows(final, k):
    order = np.argsort(final, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(final, order, axis=1)


def worker(method, scale, dim, seed, out, cache):
    """Run one method once in this (fresh) process and write its ranking + figures to ``out``."""
    from post_processing.rerank import re_ranking, re_ranking_features, reference_re_ranking
    q, g = SCALES[scale]
    Q, G = make_features(q, g, dim, seed)
    info = {}
    paths = [Path(cache) / f"{scale}-{name}.npy" for name in ("q_g", "q_q", "g_g")]
    if method == "prepare":  # build the distance matrices once, for the matrix-level methods
        t = time.perf_counter()
        for path, d in zip(paths, distance_matrices(Q, G)):
            np.save(path, d)
        Path(out).with_suffix(".json").write_text(json.dumps({"seconds": time.perf_counter() - t}))
        return
    if method != "features":
        del Q, G
        mats = [np.load(p) for p in paths]
    if not method.startswith("numpy"):  # warm-up on a tiny input: loads (or compiles) the kernels
        Qs, Gs = make_features(20, 200, 32, seed + 1)
        t = time.perf_counter()
        re_ranking(*distance_matrices(Qs, Gs))
        re_ranking_features(Qs, Gs)
        info["warmup_s"] = time.perf_counter() - t
    info["inputs_mb"] = rss_now_mb()
    t, cpu = time.perf_counter(), time.process_time()
    if method.startswith("numpy"):
        final = reference_re_ranking(*mats, argsort_kind="stable" if method == "numpy-stable" else "quicksort")
    elif method == "matrix":
        final = re_ranking(*mats)
    else:
        idx, dist = re_ranking_features(Q, G, topk=TOPK)
    info["seconds"] = time.perf_counter() - t
    info["cpu_s"] = time.process_time() - cpu
    info["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if method != "features":  # the full-matrix methods stop at the q×g matrix; rank it untimed
        idx, dist = topk_rows(final, TOPK)
    np.savez(out, idx=idx, dist=dist)
    Path(out).with_suffix(".json").write_text(json.dumps(info))


def cold_compile(seed):
    """Seconds for the first calls with an empty numba cache (compile everything once)."""
    from post_processing.rerank import re_ranking, re_ranking_features
    Qs, Gs = make_features(20, 200, 32, seed + 1)
    t = time.perf_counter()
    re_ranking(*distance_matrices(Qs, Gs))
    re_ranking_features(Qs, Gs)
    print(json.dumps({"compile_s": time.perf_counter() - t}))


def spawn(args, env=None):
    """Run this script as a fresh worker process (its stderr, e.g. progress bars, passes through)."""
    proc = subprocess.run([sys.executable, __file__] + args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"worker {' '.join(args)} failed with exit status {proc.returncode}")
    return proc


def run_scale(scale, dim, seed, tmp):
    """Every method on one scale, each in a fresh worker: (figures by method, seconds the three
    distance matrices took or None)."""
    methods = ["features"] if scale == "veriwild" else ["numpy", "numpy-stable", "matrix", "features"]
    rows, built = {}, None
    if scale != "veriwild":
        out = os.path.join(tmp, f"{scale}-prepare.npz")
        spawn(["--worker", "prepare", scale, "--dim", str(dim), "--seed", str(seed), "--out", out, "--cache", tmp])
        built = json.loads(Path(out).with_suffix(".json").read_text())["seconds"]
    for method in methods:
        out = os.path.join(tmp, f"{scale}-{method}.npz")
        spawn(["--worker", method, scale, "--dim", str(dim), "--seed", str(seed), "--out", out, "--cache", tmp])
        rows[method] = json.loads(Path(out).with_suffix(".json").read_text())
        rows[method]["ranking"] = dict(np.load(out))
    return rows, built


def report_scale(scale, dim, rows, built):
    """Print one scale's table; each row gains its agreement with numpy-stable and loses its ranking."""
    q, g = SCALES[scale]
    print(f"\n{scale}: {q} queries × {g} gallery, {dim}-d"
          + (f" (the three distance matrices took {built:.1f} s)" if built else ""), flush=True)
    print(f"  {'method':<12} {'time s':>8} {'cpu s':>8} {'speed-up':>9} {'peak MB':>8} {'inputs MB':>9}"
          "  top-100 vs numpy-stable")
    base, ref = rows.get("numpy"), rows.get("numpy-stable")
    for method, r in rows.items():
        speed = f"{base['seconds'] / r['seconds']:.1f}×" if base else "-"
        same = "-"
        if ref and method != "numpy-stable":
            differ = int((r["ranking"]["idx"] != ref["ranking"]["idx"]).any(axis=1).sum())
            diff = float(np.abs(r["ranking"]["dist"] - ref["ranking"]["dist"]).max())
            same = "identical" if not differ else f"{differ}/{q} queries differ"
            same += f" (max |Δd| {diff:.1e})"
            r.update(queries_differing=differ, max_abs_diff=diff)
        print(f"  {method:<12} {r['seconds']:>8.2f} {r['cpu_s']:>8.2f} {speed:>9} {r['peak_mb']:>8.0f}"
              f" {r['inputs_mb']:>9.0f}  {same}")
    for r in rows.values():
        del r["ranking"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", default="small,veri776,aic20",
                   help=f"comma-separated subset of {','.join(SCALES)}")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--worker", nargs=2, metavar=("METHOD", "SCALE"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--cache", help=argparse.SUPPRESS)
    p.add_argument("--cold-compile", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.dim, args.seed, args.out, args.cache)
        return 0
    if args.cold_compile:
        cold_compile(args.seed)
        return 0
    scales = [s.strip() for s in args.scales.split(",") if s.strip()]
    unknown = [s for s in scales if s not in SCALES]
    if unknown:
        p.error(f"unknown scale(s) {unknown}; choose from {list(SCALES)}")

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba-cache"))
        compile_s = json.loads(spawn(["--cold-compile"], env=env).stdout)["compile_s"]
        print(f"numba cold compile (empty cache, both entry points): {compile_s:.1f} s", flush=True)
        results["compile_s"] = compile_s
        for scale in scales:
            rows, built = run_scale(scale, args.dim, args.seed, tmp)
            if built is not None:
                results.setdefault("distance_matrices_s", {})[scale] = built
            report_scale(scale, args.dim, rows, built)
            results[scale] = rows
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
