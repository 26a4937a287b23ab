"""Benchmark: city-scale neighbours with the ``--knn`` backends, against the exact path in the same run.

Three parts, every method in its own fresh subprocess (so its peak RSS is its own), on seeded
clustered unit-norm 2048-d features (``scripts/bench/rerank.py``'s generator, ≈50 images per identity):

* ``search``: top-100 gallery neighbours of every query at the VeRi-Wild-large shape (10,000 queries ×
  128,517 gallery) with ``exact`` (blocked numpy GEMM, the baseline and ground truth), ``faiss``
  (flat) and ``faiss-ivf``: time (index build + search), peak RSS, recall@100 against exact and the
  share of queries whose top-100 is identical (recall@10 too: with ≈50 images per identity, the far
  end of a top-100 is other identities at nearly equal distances, which cell-based search misses first);
* ``rerank``: top-100 k-reciprocal re-ranking from features (``re_ranking_features``) at that shape,
  the exact numba path against ``--knn faiss-ivf``: time, peak RSS, recall@100 of the re-ranked lists.
  The flat faiss backend is left out by default at this scale (on a CPU it computes the full
  (q+g)×(q+g) distances twice, without the exact path's symmetry: ``--rerank-methods`` adds it);
* ``million``: a 1,000,000-image gallery in ``faiss-ivf`` with 128-byte PQ codes (``pq=128``), built
  from features generated 65,536 at a time and never held whole (float32 would be 8 GB): build time,
  queries per second, peak RSS, and recall@100 of 200 queries against an exact top-100 streamed over
  the same chunks.

    python scripts/bench/cityscale.py                        # all three parts, full size
    python scripts/bench/cityscale.py --scale small --million 100000   # a quick check
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

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from rerank import IMAGES_PER_ID, NOISE, make_features  # noqa: E402  (the sibling benchmark's generator)

SCALES = {"small": (500, 12000), "veriwild-small": (3000, 38861), "veriwild": (10000, 128517)}
TOPK = 100
CHUNK = 65536
MILLION_SPEC = "faiss-ivf:nlist=256,nprobe=16,pq=128,train_size=32768"
RECALL_QUERIES = 200


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_search(method, scale, dim, seed, out):
    from post_processing.knn import build_index
    Q, G = make_features(*SCALES[scale], dim, seed)
    t = time.perf_counter()
    index = build_index(method, G, "euclidean")
    built = time.perf_counter() - t
    idx, _ = index.search(Q, TOPK)
    total = time.perf_counter() - t
    np.save(out + ".npy", idx)
    return {"build_s": built, "seconds": total, "peak_mb": peak_mb()}


def worker_rerank(method, scale, dim, seed, out):
    from post_processing.rerank import re_ranking_features
    Q, G = make_features(20, 200, 32, seed + 1)
    re_ranking_features(Q, G, knn=method)  # loads (or compiles) the kernels outside the timing
    Q, G = make_features(*SCALES[scale], dim, seed)
    t = time.perf_counter()
    idx, _ = re_ranking_features(Q, G, topk=TOPK, knn=method)
    info = {"seconds": time.perf_counter() - t, "peak_mb": peak_mb()}
    np.save(out + ".npy", idx)
    return info


def million_chunk(c, n, centres, dim, seed):
    """Chunk ``c`` of the million-image gallery, regenerated identically from its own seed."""
    rng = np.random.default_rng([seed, c])
    m = min(CHUNK, n - c * CHUNK)
    x = centres[rng.integers(0, len(centres), m)] + NOISE * rng.standard_normal((m, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def worker_million(n, dim, seed, queries):
    """Build the PQ index chunk by chunk while streaming the exact top-100 of a query sample."""
    from post_processing.distance import pairwise_distance, topk_smallest
    from post_processing.knn import KNN_BACKENDS, parse_knn
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // IMAGES_PER_ID, dim), dtype=np.float32)
    ids = rng.integers(0, len(centres), queries)
    Q = centres[ids] + NOISE * rng.standard_normal((queries, dim), dtype=np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    spec = parse_knn(MILLION_SPEC)
    index = KNN_BACKENDS.get(spec.name)(dim, "euclidean", spec.params)
    sample = Q[:RECALL_QUERIES]
    best_d = np.full((len(sample), 0), np.inf, np.float32)
    best_i = np.zeros((len(sample), 0), np.int64)
    build = exact = 0.0
    for c in range(-(-n // CHUNK)):
        x = million_chunk(c, n, centres, dim, seed)
        t = time.perf_counter()
        index.add(x)
        build += time.perf_counter() - t
        t = time.perf_counter()
        d = np.concatenate([best_d, pairwise_distance(sample, x)], axis=1)
        i = np.concatenate([best_i, np.broadcast_to(np.arange(len(x)) + c * CHUNK, (len(sample), len(x)))], axis=1)
        top = topk_smallest(d, TOPK)
        best_d, best_i = np.take_along_axis(d, top, 1), np.take_along_axis(i, top, 1)
        exact += time.perf_counter() - t
        del x, d, i
    index.search(Q[:50], TOPK)  # warm-up
    t = time.perf_counter()
    got, _ = index.search(Q, TOPK)
    search = time.perf_counter() - t
    recall = float(np.mean([len(np.intersect1d(a, b)) / TOPK for a, b in zip(got[:len(sample)], best_i)]))
    recall10 = float(np.mean([len(np.intersect1d(a[:10], b[:10])) / 10 for a, b in zip(got[:len(sample)], best_i)]))
    return {"recall_at_10": recall10, "gallery": n, "spec": MILLION_SPEC, "build_s": build, "exact_sample_s": exact, "queries": queries,
            "search_s": search, "qps": queries / search, "recall_at_100": recall, "peak_mb": peak_mb(),
            "index_mb": n * (128 + 8) / 2 ** 20}


def spawn(args):
    proc = subprocess.run([sys.executable, __file__] + args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"worker {' '.join(args)} failed with exit status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(rows, tmp, part):
    ref = np.load(os.path.join(tmp, f"{part}-exact.npy"))
    for method, r in rows.items():
        got = np.load(os.path.join(tmp, f"{part}-{method}.npy"))
        r["recall_at_100"] = float(np.mean([len(np.intersect1d(a, b)) / TOPK for a, b in zip(got, ref)]))
        r["recall_at_10"] = float(np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(got[:, :10], ref[:, :10])]))
        r["identical_rows"] = float((got == ref).all(axis=1).mean())
    base = rows["exact"]["seconds"]
    for method, r in rows.items():
        print(f"  {method:<28} {r['seconds']:>9.1f} {base / r['seconds']:>8.2f}× {r['peak_mb']:>9.0f}"
              f" {r['recall_at_10']:>9.4f} {r['recall_at_100']:>10.4f} {r['identical_rows']:>10.3f}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=tuple(SCALES), default="veriwild",
                   help="query × gallery shape of the search and rerank parts (veriwild = VeRi-Wild large)")
    p.add_argument("--parts", default="search,rerank,million")
    p.add_argument("--search-methods", default="exact,faiss,faiss-ivf,faiss-ivf:nprobe=64")
    p.add_argument("--rerank-methods", default="exact,faiss-ivf")
    p.add_argument("--million", type=int, default=1_000_000, help="gallery size of the throughput part")
    p.add_argument("--queries", type=int, default=2000, help="queries of the throughput part")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--worker", nargs=2, metavar=("PART", "METHOD"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        part, method = args.worker
        if part == "million":
            info = worker_million(args.million, args.dim, args.seed, args.queries)
        else:
            info = (worker_search if part == "search" else worker_rerank)(method, args.scale, args.dim, args.seed,
                                                                          args.out)
        print(json.dumps(info))
        return 0
    parts = args.parts.split(",")
    q, g = SCALES[args.scale]
    results = {"scale": [q, g, args.dim]}
    with tempfile.TemporaryDirectory() as tmp:
        common = ["--scale", args.scale, "--dim", str(args.dim), "--seed", str(args.seed)]
        for part, methods in (("search", args.search_methods), ("rerank", args.rerank_methods)):
            if part not in parts:
                continue
            print(f"\n{part}: {q} queries × {g} gallery, {args.dim}-d, top-{TOPK}", flush=True)
            print(f"  {'method':<28} {'time s':>9} {'speed-up':>9} {'peak MB':>9} {'recall@10':>9} {'recall@100':>10} {'identical':>10}")
            rows = {}
            for method in ["exact"] + [m for m in methods.split(",") if m != "exact"]:
                rows[method] = spawn(["--worker", part, method, "--out", os.path.join(tmp, f"{part}-{method}")]
                                     + common)
            compare(rows, tmp, part)
            results[part] = rows
    if "million" in parts:
        r = spawn(["--worker", "million", "-", "--million", str(args.million), "--queries", str(args.queries),
                   "--dim", str(args.dim), "--seed", str(args.seed)])
        print(f"\nmillion: {r['gallery']} gallery images, {args.dim}-d, --knn {r['spec']} (PQ codes "
              f"{r['index_mb']:.0f} MB): build {r['build_s']:.0f} s, {r['queries']} queries in {r['search_s']:.2f} s "
              f"= {r['qps']:.0f} queries/s, recall@10 {r['recall_at_10']:.3f}, recall@100 {r['recall_at_100']:.3f} ({RECALL_QUERIES} queries vs exact), "
              f"peak {r['peak_mb']:.0f} MB", flush=True)
        results["million"] = r
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
