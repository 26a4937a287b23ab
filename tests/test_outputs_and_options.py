"""Issue 18: a failing command replaces none of its outputs, outputs get the usual file modes,
`validate` accepts exactly the documented ASCII track2 format, and numbers are checked when the
options are parsed, naming the option."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from ensembles.cli import main
from ensembles.pipeline import Pipeline
from ensembles.tune import SearchSpace, TuneError, plan_trials
from post_processing.fileio import atomic_write, write_together
from post_processing.submission import SubmissionError, read_track2, validate_track2


@pytest.fixture(scope="module")
def case(tmp_path_factory, ensemble_fakes):
    base = tmp_path_factory.mktemp("outs")
    tree = ensemble_fakes.build_tree(str(base / "data"), images=True)
    ensemble_fakes.write_features(str(base / "feats"), tree, {"a": 1.0, "b": 1.1})
    return base, tree


@pytest.fixture
def umask():
    """Sets the process umask for one test (``umask(0o022)``) and restores it afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def run(*args, code=0):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == code, res.output + repr(res.exception)
    assert "Traceback" not in res.output
    return res


def fuse(base, out, *extra):
    return ("fuse", "--models", "a,b", "--features-dir", base / "feats", "--data-root", base / "data",
            "--out", out, *extra)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# Item 4: outputs are checked first and replaced together.

@pytest.mark.parametrize("bad", ["metrics", "pipeline"])
def test_fuse_with_an_unwritable_second_output_fails_before_computing_and_keeps_out(case, tmp_path, bad):
    base, _ = case
    out = tmp_path / "track2.txt"
    out.write_text("previous\n")
    (tmp_path / "afile").write_text("")
    extra = (["--metrics-out", tmp_path / "afile" / "m.json"] if bad == "metrics"
             else ["--save-pipeline", tmp_path / "afile" / "p.yaml"])
    res = run(*fuse(base, out, *extra), code=1)
    assert ("--metrics-out" if bad == "metrics" else "--save-pipeline") in res.output
    assert "data:" not in res.output  # refused before loading anything
    assert out.read_text() == "previous\n"


def test_fuse_failing_while_writing_replaces_none_of_its_outputs(case, tmp_path, monkeypatch):
    base, _ = case
    out, metrics = tmp_path / "track2.txt", tmp_path / "m.json"
    out.write_text("previous\n")
    metrics.write_text("{}\n")

    def broken_save(self, path, header=""):
        raise OSError("disk full")

    monkeypatch.setattr(Pipeline, "save", broken_save)
    res = CliRunner().invoke(main, [str(a) for a in fuse(base, out, "--metrics-out", metrics,
                                                         "--save-pipeline", tmp_path / "p.yaml")])
    assert isinstance(res.exception, OSError)
    assert out.read_text() == "previous\n" and metrics.read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "track2.txt"]  # no temporary left


def test_two_options_naming_the_same_file_are_a_usage_error(case, tmp_path):
    base, _ = case
    res = run(*fuse(base, tmp_path / "t.txt", "--metrics-out", tmp_path / "t.txt"), code=2)
    assert "--out and --metrics-out name the same file" in res.output


def test_visualize_failing_on_the_cmc_keeps_the_previous_rank_list(case, tmp_path):
    base, _ = case
    track2, png = tmp_path / "track2.txt", tmp_path / "ranks.png"
    run(*fuse(base, track2))
    png.write_bytes(b"previous")
    broken = tmp_path / "metrics.json"
    broken.write_text("{not json")
    res = run("visualize", track2, "--data-root", base / "data", "--out", png, "--cmc-out", tmp_path / "cmc.png",
              "--metrics", broken, "--queries", 2, code=1)
    assert "not valid JSON" in res.output
    assert png.read_bytes() == b"previous" and not (tmp_path / "cmc.png").exists()
    (tmp_path / "afile").write_text("")
    res = run("visualize", track2, "--data-root", base / "data", "--out", png, "--cmc-out",
              tmp_path / "afile" / "cmc.png", code=1)
    assert "--cmc-out" in res.output and png.read_bytes() == b"previous"


def test_visualize_refuses_out_of_range_gallery_ids_naming_the_line(case, tmp_path):
    base, _ = case
    track2 = tmp_path / "track2.txt"
    run(*fuse(base, track2))
    lines = track2.read_text().splitlines(keepends=True)
    track2.write_text("999 " + lines[0].split(" ", 1)[1] + "".join(lines[1:]))
    res = run("visualize", track2, "--data-root", base / "data", "--out", tmp_path / "r.png", code=1)
    assert f"{track2}:1: id 999 out of range" in res.output and not (tmp_path / "r.png").exists()


def test_write_together_commits_all_or_nothing(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("old a")
    with pytest.raises(KeyError):
        with write_together():
            with atomic_write(str(a)) as f:
                f.write("new a")
            assert a.read_text() == "old a"  # not yet renamed
            raise KeyError("later failure")
    assert a.read_text() == "old a" and sorted(os.listdir(tmp_path)) == ["a"]
    with write_together():
        for p in (a, b):
            with atomic_write(str(p)) as f:
                f.write("new")
    assert a.read_text() == b.read_text() == "new"


# Item 5: file modes.

@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_honour_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    path = tmp_path / "out.txt"
    with atomic_write(str(path)) as f:
        f.write("x")
    assert mode(path) == expected
    with write_together(), atomic_write(str(tmp_path / "other.txt")) as f:
        f.write("y")
    assert mode(tmp_path / "other.txt") == expected


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o077)
    path = tmp_path / "shared.txt"
    path.write_text("old")
    os.chmod(path, 0o664)
    with atomic_write(str(path)) as f:
        f.write("new")
    assert mode(path) == 0o664 and path.read_text() == "new"


def test_fuse_outputs_are_readable_by_the_group_and_others_under_umask_022(case, tmp_path, umask):
    umask(0o022)
    base, _ = case
    out, metrics = tmp_path / "t.txt", tmp_path / "m.json"
    run(*fuse(base, out, "--metrics-out", metrics))
    assert mode(out) == mode(metrics) == 0o644


# Item 9: the exact ASCII format.

K, NQ, NG = 100, 3, 150


def body() -> str:
    rng = np.random.default_rng(0)
    return "".join(" ".join(map(str, rng.permutation(NG)[:K] + 1)) + "\n" for _ in range(NQ))


def to_digits(text: str, zero: int) -> str:
    """The first id of ``text`` written with the Unicode digits starting at code point ``zero``."""
    first = text.split(" ", 1)[0]
    return "".join(chr(zero + int(d)) for d in first) + text[len(first):]


@pytest.mark.parametrize("name, text, fragment, line", [
    ("arabic-indic digits", to_digits(body(), 0x660), "non-ASCII character U+06", 1),
    ("full-width digits", to_digits(body(), 0xFF10), "non-ASCII character U+FF1", 1),
    ("no-break space", body().replace(" ", "\u00a0", 1), "U+00A0 (NO-BREAK SPACE)", 1),
    ("CR-only line ends", body().replace("\n", "\r"), "CR-only", 1),
    ("CRLF line ends", body().replace("\n", "\r\n"), r"Windows (\r\n) line ends on 3 line(s)", 1),
    ("trailing space", body().replace("\n", " \n", 1), "single spaces", 1),
    ("tab separator", body().replace(" ", "\t", 1), "single spaces", 1),
    ("byte-order mark", "\ufeff" + body(), "byte-order mark", 1),
    ("no final newline", body()[:-1], "no newline at the end", 3),
])
def test_validate_accepts_only_the_documented_ascii_format(tmp_path, name, text, fragment, line):
    path = tmp_path / "track2.txt"
    path.write_bytes(text.encode("utf-8"))
    problems = validate_track2(str(path), NQ, NG)
    assert any(p.startswith(f"{path}:{line}: ") and fragment in p for p in problems), problems
    assert not any("duplicate" in p for p in problems), problems  # a CR-only file is not one long line


def test_the_exact_format_is_valid_and_the_readers_stay_lenient_only_where_nothing_changes(tmp_path):
    path = tmp_path / "track2.txt"
    path.write_text(body(), newline="")
    assert validate_track2(str(path), NQ, NG) == []
    expected = read_track2(str(path))
    path.write_bytes(body().replace("\n", "\r\n").encode())
    assert read_track2(str(path)) == expected
    for text in (to_digits(body(), 0x660), body().replace("\n", "\r")):
        path.write_bytes(text.encode())
        with pytest.raises(SubmissionError):
            read_track2(str(path))


def test_validate_command_refuses_unicode_digits(case, tmp_path):
    base, _ = case
    track2 = tmp_path / "track2.txt"
    run(*fuse(base, track2))
    run("validate", track2, "--data-root", base / "data")
    track2.write_bytes(to_digits(track2.read_text(), 0xFF10).encode())
    res = run("validate", track2, "--data-root", base / "data", code=1)
    assert "FULLWIDTH DIGIT" in res.output


# Item 10: numbers are checked when parsed, naming the option.

@pytest.mark.parametrize("command, extra, option", [
    ("fuse", ["--camera-penalty", "-1e30"], "--camera-penalty"),
    ("fuse", ["--camera-penalty", "1e30"], "--camera-penalty"),
    ("fuse", ["--topk", "0"], "--topk"),
    ("fuse", ["--topk", "-5"], "--topk"),
    ("fuse", ["--dense-rerank-max", "-1", "--rerank"], "--dense-rerank-max"),
    ("fuse", ["--subtract", "b:-0.5"], "--subtract"),
    ("tune", ["--k1-grid", "5,10"], "--rerank-k1-grid"),
    ("tune", ["--weight-grid=-1,1"], "--weight-grid"),
    ("tune", ["--weight-grid", "nan"], "--weight-grid"),
    ("tune", ["--budget", "0"], "--budget"),
    ("validate", ["--topk", "0"], "--topk"),
    ("visualize", ["--queries", "0"], "--queries"),
    ("visualize", ["--metrics", "m.json"], "--cmc-out"),
])
def test_bad_numbers_are_usage_errors_naming_the_option(case, tmp_path, command, extra, option):
    base, _ = case
    where = ["--models", "a,b", "--features-dir", base / "feats", "--data-root", base / "data"]
    args = {"fuse": ["fuse", *where, "--out", tmp_path / "t.txt"],
            "tune": ["tune", *where, "--out", tmp_path / "p.yaml"],
            "validate": ["validate", tmp_path / "t.txt", "--data-root", base / "data"],
            "visualize": ["visualize", tmp_path / "t.txt", "--data-root", base / "data", "--out", tmp_path / "r.png"],
            }[command]
    res = run(*args, *extra, code=2)
    assert option in res.output and "data:" not in res.output
    assert sorted(os.listdir(tmp_path)) == []


def test_a_negative_camera_penalty_in_a_pipeline_yaml_names_the_key(case, tmp_path):
    base, _ = case
    pipe = tmp_path / "p.yaml"
    pipe.write_text("steps:\n  - {name: camera_penalty, penalty: -1}\n")
    res = run("fuse", "--models", "a,b", "--features-dir", base / "feats", "--data-root", base / "data",
              "--out", tmp_path / "t.txt", "--pipeline", pipe, code=1)
    assert "'camera_penalty'" in res.output and "'penalty'" in res.output and "[0, 10]" in res.output


def test_tune_checks_every_grid_value_against_its_param_before_any_trial():
    base = Pipeline(models=["a", "b"]).validate()
    base.steps = Pipeline.from_dict({"steps": ["rerank"]}).steps
    with pytest.raises(TuneError, match="--rerank-k1-grid .*'k1'.*got 0"):
        plan_trials(base, SearchSpace(weights=(1.0,), fusions=("concat",), grids={("rerank", "k1"): (10, 0)}))
