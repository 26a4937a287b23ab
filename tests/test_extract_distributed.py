"""Distributed extraction: ``torchrun --nproc_per_node 2 -m global_model extract`` on CPU (gloo) writes
the same feature files, in dataset order, as a single process; the shards cover every image once."""
import os
import subprocess
import sys

import numpy as np

from global_model.cli import main
from global_model.engine.runtime import shard_bounds
from post_processing.features import load_features


def test_shards_are_contiguous_cover_everything_once_and_differ_by_at_most_one():
    for n in (0, 1, 5, 17):
        for world in (1, 2, 3, 8):
            bounds = [shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1


def test_two_gloo_processes_write_what_one_process_writes(tiny_run, tmp_path):
    args = ["extract", "--checkpoint", tiny_run["checkpoint"], "--data-root", tiny_run["root"], "--name", "t",
            "--no-progress", "MODEL.DEVICE", "cpu"]
    single = str(tmp_path / "single")
    assert main(args[:1] + ["--out-dir", single] + args[1:]) == 0
    shared = str(tmp_path / "torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "global_model"] + args[:1] + ["--out-dir", shared] + args[1:],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(shared)) == ["gallery_t.pkl", "query_t.pkl"]  # rank 0 only, no temp files
    assert proc.stdout.count("wrote ") == 2
    for split in ("query", "gallery"):
        one, two = load_features(os.path.join(single, f"{split}_t.pkl")), load_features(os.path.join(shared, f"{split}_t.pkl"))
        assert two.names == one.names and len(one.names) > 2
        np.testing.assert_allclose(two.feats, one.feats, rtol=0, atol=1e-5)
        assert two.meta["fingerprint"] == one.meta["fingerprint"]
