"""Benchmark: numba ``post_processing.evaluation.evaluate`` vs the plain-numpy reference.

Both run the same protocol (Market/VeRi: same id + same camera removed, ties by gallery index)
on seeded clustered 2048-d features at three scales (500×5000, VeRi-776 1678×11579, AIC20
1052×18290), distances from ``pairwise_distance``. Each implementation runs in its own
subprocess so time and peak memory are measured alike: peak = the rise of the process's peak
RSS (VmHWM, reset through /proc/self/clear_refs) above its RSS once the inputs are loaded.
Numba's first call (a cold compile — the numba cache starts empty — or a cache load) is reported
separately and excluded from the timings. Target: ≤ 0.5 s at VeRi scale (a compiled cython
evaluator's time here).

    python scripts/bench/evaluate.py [--scales 500x5000,VeRi-776,AIC20]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

# Idle numba (OpenMP) threads sleep instead of spinning, which slows every launch; numba loads later.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

SCALES = {  # name: (queries, gallery, ids, cameras)
    "500x5000": (500, 5000, 100, 10),
    "VeRi-776": (1678, 11579, 200, 20),
    "AIC20": (1052, 18290, 333, 40),
}
DIM = 2048
TARGET_S = 0.5
REPEATS = {"numba": 5, "numpy": 1}


def make_case(nq: int, ng: int, nids: int, ncams: int, seed: int = 0):
    """Clustered features: id centre + camera offset + per-image noise, so same-camera
    non-matches are plausible confounders; returns the euclidean distmat and labels."""
    from post_processing.distance import pairwise_distance

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((nids, DIM), dtype=np.float32)
    cam_offsets = 0.6 * rng.standard_normal((ncams, DIM), dtype=np.float32)

    def images(n):
        pids = rng.integers(0, nids, n)
        cams = rng.integers(0, ncams, n)
        feats = centres[pids] + cam_offsets[cams] + 3.2 * rng.standard_normal((n, DIM), dtype=np.float32)
        return feats, pids, cams

    qf, q_pids, q_cams = images(nq)
    gf, g_pids, g_cams = images(ng)
    return pairwise_distance(qf, gf), q_pids, g_pids, q_cams, g_cams


def _mem_mb() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def child(impl: str, data: str, out: str) -> None:
    """Run one implementation on one saved case and save its timings, peak memory and result."""
    from post_processing.evaluation import evaluate, evaluate_numpy

    fn = evaluate if impl == "numba" else evaluate_numpy
    with np.load(data) as z:
        args = tuple(z[k] for k in ("distmat", "q_pids", "g_pids", "q_cams", "g_cams"))
    first = float("nan")
    if impl == "numba":
        t = time.perf_counter()
        fn(*args)
        first = time.perf_counter() - t
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS mark
    base = _mem_mb()["VmRSS"]
    times = []
    for _ in range(REPEATS[impl]):
        t = time.perf_counter()
        res = fn(*args)
        times.append(time.perf_counter() - t)
    np.savez(out, time=min(times), first=first, peak=_mem_mb()["VmHWM"] - base, mAP=res["mAP"],
             mINP=res["mINP"], cmc=res["cmc"], num_valid=res["num_valid"])


def _run_child(impl: str, data: str, tmp: str, env: dict) -> dict:
    out = os.path.join(tmp, f"{impl}.npz")
    subprocess.run([sys.executable, __file__, "--child", impl, "--data", data, "--out", out], check=True, env=env)
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default=",".join(SCALES), help="comma-separated subset of " + ", ".join(SCALES))
    ap.add_argument("--child", choices=sorted(REPEATS), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data, args.out)
        return 0

    names = [s for s in args.scales.split(",") if s]
    unknown = [s for s in names if s not in SCALES]
    if unknown:
        ap.error(f"unknown scale(s) {unknown}; choose from {', '.join(SCALES)}")
    print(f"evaluate(): numba kernel vs plain-numpy reference; {os.cpu_count()} CPU(s); "
          f"best of {REPEATS['numba']} (numba) / {REPEATS['numpy']} (numpy) runs; peak = RSS rise during the call")
    header = (f"{'scale':<10} {'Q×G':>12} {'numpy s':>8} {'numba s':>8} {'speed-up':>8} "
              f"{'numpy MB':>9} {'numba MB':>9} {'identical':>9} {'mAP':>7}")
    rows, firsts, ok = [], [], True
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba_cache"))  # first numba run compiles
        for name in names:
            nq, ng, nids, ncams = SCALES[name]
            t = time.perf_counter()
            distmat, q_pids, g_pids, q_cams, g_cams = make_case(nq, ng, nids, ncams)
            gen_s = time.perf_counter() - t
            data = os.path.join(tmp, "case.npz")
            np.savez(data, distmat=distmat, q_pids=q_pids, g_pids=g_pids, q_cams=q_cams, g_cams=g_cams)
            del distmat
            ref = _run_child("numpy", data, tmp, env)
            got = _run_child("numba", data, tmp, env)
            same = (got["mAP"] == ref["mAP"] and got["mINP"] == ref["mINP"]
                    and got["num_valid"] == ref["num_valid"] and np.array_equal(got["cmc"], ref["cmc"]))
            ok &= bool(same)
            firsts.append((name, float(got["first"])))
            rows.append(f"{name:<10} {f'{nq}×{ng}':>12} {float(ref['time']):>8.3f} {float(got['time']):>8.3f} "
                        f"{float(ref['time']) / float(got['time']):>7.1f}x {float(ref['peak']):>9.1f} "
                        f"{float(got['peak']):>9.1f} {'yes' if same else 'NO':>9} {float(got['mAP']):>7.4f}")
            print(f"  [{name}: features + pairwise_distance {gen_s:.1f} s]", flush=True)
    print(header)
    print("\n".join(rows))
    print("numba first call (compile or cache load + one run, excluded above): "
          + ", ".join(f"{n} {s:.2f} s" for n, s in firsts) + " — the first is a cold compile (empty cache)")
    if "VeRi-776" in names:
        veri = [r for r in rows if r.startswith("VeRi-776")][0].split()
        print(f"target: VeRi-776 evaluation <= {TARGET_S} s: {'met' if float(veri[3]) <= TARGET_S else 'MISSED'}"
              f" ({veri[3]} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
