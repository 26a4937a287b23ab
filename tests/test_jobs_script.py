"""scripts/jobs.sh: model jobs N at a time with cores/N threads each; a failure stops the others and exits 1.

The demo trains and extracts its models through it (DEMO_JOBS), extract_feature_val.sh through JOBS."""
import os
import subprocess
import sys
import time

import pytest

CORES = len(os.sched_getaffinity(0))


def run_jobs(repo_root, tmp_path, body, jobs=2, timeout=60):
    script = tmp_path / "run.sh"
    script.write_text(f""". "{repo_root}/scripts/jobs.sh"
set -e
job_done() {{ echo "done $1 in $3 s: $(cat "$2")"; }}
jobs_init {jobs}
trap jobs_stop EXIT
{body}
jobs_wait_all
echo "all done"
""")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    return subprocess.run(["sh", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_runs_n_at_a_time_with_cores_over_n_threads_each(repo_root, tmp_path):
    # Each job records when it started and ended; two at a time means the third starts after the first.
    body = "\n".join(
        f"jobs_start j{i} {tmp_path}/j{i}.log sh -c 'echo $(date +%s.%N) > {tmp_path}/s{i}; sleep {d}; "
        f"echo $(date +%s.%N) > {tmp_path}/e{i}; echo threads=$OMP_NUM_THREADS'"
        for i, d in enumerate([1.5, 3, 0.5]))
    res = run_jobs(repo_root, tmp_path, body)
    assert res.returncode == 0, res.stderr
    jobs = min(2, CORES)
    if jobs == 1:
        pytest.skip("one core: jobs run in the foreground, one after the other")
    threads = CORES // jobs
    for i in range(3):
        assert f"done j{i} in " in res.stdout and f"threads={threads}" in res.stdout
        assert f"j{i}: started ({threads} thread(s) each, 2 at a time; log {tmp_path}/j{i}.log)" in res.stdout
    start = {i: float((tmp_path / f"s{i}").read_text()) for i in range(3)}
    end = {i: float((tmp_path / f"e{i}").read_text()) for i in range(3)}
    assert start[1] < end[0]          # the first two overlap
    assert start[2] >= end[0]         # the third waited for a free slot (the first ended first)
    assert res.stdout.rstrip().endswith("all done")


def test_one_job_runs_in_the_foreground_with_the_default_threads(repo_root, tmp_path):
    res = run_jobs(repo_root, tmp_path, f"jobs_start a {tmp_path}/a.log sh -c 'echo threads=${{OMP_NUM_THREADS:-unset}}'",
                   jobs=1)
    assert res.returncode == 0, res.stderr
    assert "threads=unset" in res.stdout and not (tmp_path / "a.log").exists()


@pytest.mark.parametrize("bad_first", [True, False], ids=["failure-first", "failure-second"])
def test_a_failure_prints_its_log_stops_the_running_job_and_exits_1(repo_root, tmp_path, bad_first):
    if CORES < 2:
        pytest.skip("needs two cores for two jobs at once")
    bad = f"jobs_start bad {tmp_path}/bad.log sh -c 'echo the reason it failed; sleep 0.5; exit 3'"
    # The slow job's process runs under the job's subshells: stopping it must reach it.
    slow = f"jobs_start slow {tmp_path}/slow.log sh -c 'echo $$ > {tmp_path}/slow.pid; exec sleep 60'"
    began = time.time()
    res = run_jobs(repo_root, tmp_path, "\n".join([bad, slow] if bad_first else [slow, bad]))
    assert res.returncode == 1 and time.time() - began < 30  # noticed at once, not after the slow job
    assert "the reason it failed" in res.stderr
    assert f"bad failed (exit status 3; log {tmp_path}/bad.log)" in res.stderr
    assert "all done" not in res.stdout and "done slow" not in res.stdout
    pid = int((tmp_path / "slow.pid").read_text())
    for _ in range(50):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}")


def test_extract_script_two_at_a_time_writes_every_model(repo_root, tiny_run, tmp_path):
    feats = str(tmp_path / "features")
    ckpt = tiny_run["checkpoint"]
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=repo_root, JOBS="2",
               MODELS=f"a::{ckpt} b::{ckpt}", DATA_ROOT=tiny_run["root"], FEATURES_DIR=feats,
               EXTRACT_ARGS="INPUT.SIZE_TEST [48,64]")
    res = subprocess.run(["sh", os.path.join(repo_root, "scripts", "extract_feature_val.sh")], cwd=repo_root,
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("a", "b"):
        assert f"{name}: extracted in " in res.stdout or CORES < 2
        for split in ("query", "gallery"):
            assert os.path.isfile(os.path.join(feats, f"{split}_{name}.pkl"))
    assert "extracted 2 model(s)" in res.stdout
    assert not [f for f in os.listdir(tmp_path) if "staging" in f]  # the staging folder (and job logs) went
