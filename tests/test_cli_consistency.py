"""One consistent CLI across ``python -m global_model`` and ``ensemble``: every option of every command
documented, ``--version`` on both, the same exit statuses, and step options refused without their step."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from ensembles.cli import main as ensemble
from global_model.cli import cli as global_model


def _commands(group: click.Group):
    """``(path, command, context)`` of the group itself and every command under it."""
    with click.Context(group, info_name=group.name) as ctx:
        yield group.name, group, ctx
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            with click.Context(cmd, info_name=name, parent=ctx) as sub:
                if isinstance(cmd, click.Group):
                    yield from ((f"{name} {p}", c, x) for p, c, x in _commands(cmd) if c is not cmd)
                yield name, cmd, sub


@pytest.mark.parametrize("group", [global_model, ensemble], ids=["global_model", "ensemble"])
def test_every_option_of_every_command_has_help_text(group):
    undocumented, seen = [], 0
    for path, cmd, ctx in _commands(group):
        # get_params: StepCommand's generated step options are included.
        for param in cmd.get_params(ctx):
            if isinstance(param, click.Option):
                seen += 1
                if not (param.help or "").strip():
                    undocumented.append(f"{path} {param.opts[0]}")
    assert seen > 30 and not undocumented, undocumented


def test_every_command_has_a_help_text():
    for group in (global_model, ensemble):
        for path, cmd, _ in _commands(group):
            assert (cmd.help or cmd.short_help or "").strip(), path


@pytest.mark.parametrize("group", [global_model, ensemble], ids=["global_model", "ensemble"])
def test_version_on_both_clis(group):
    res = CliRunner().invoke(group, ["--version"])
    assert res.exit_code == 0 and "reid-ensemble, version" in res.output


@pytest.mark.parametrize("argv", [
    ["extract", "--bogus"],
    ["extract", "--checkpoint", "c.pth", "--out-dir", "o", "--name", "x", "SOLVER.MAX_EPOCHS"],
], ids=["unknown-option", "override-without-value"])
def test_global_model_usage_errors_exit_2(argv):
    assert CliRunner().invoke(global_model, argv).exit_code == 2


@pytest.mark.parametrize("argv", [
    ["search", "--bogus"],
    ["search", "--query-features", "q.pkl", "--gallery-features", "g.pkl", "--out", "o", "TEST.FLIP"],
], ids=["unknown-option", "override-without-value"])
def test_ensemble_usage_errors_exit_2(argv):
    assert CliRunner().invoke(ensemble, argv).exit_code == 2


def test_a_missing_input_file_exits_1_on_both(tmp_path):
    res = CliRunner().invoke(global_model, ["extract", "--checkpoint", str(tmp_path / "no.pth"), "--out-dir",
                                            str(tmp_path), "--name", "x"])
    assert res.exit_code == 1 and "no.pth" in res.output
    res = CliRunner().invoke(ensemble, ["search", "--query-features", str(tmp_path / "no.pkl"), "--gallery-features",
                                        str(tmp_path / "no.pkl"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "no.pkl" in res.output


@pytest.mark.parametrize("argv, message", [
    (["fuse", "--no-rerank", "--k1", "5"], "--rerank-k1 sets a parameter of step 'rerank'; add --rerank"),
    (["fuse", "--rerank-camera-aware"], "--rerank-camera-aware sets a parameter of step 'rerank'; add --rerank"),
    (["fuse", "--qe-alpha", "3"], "sets a parameter of step 'qe'; add --qe"),
    (["tune", "--k1-grid", "10,20"], "--rerank-k1-grid tunes step 'rerank', which is not in the pipeline"),
    (["fuse", "--dense-rerank-max", "10"], "--dense-rerank-max applies to re-ranking"),
    (["tune", "--fusion", "concat", "--fusions", "distance"], "--fusion fixes the fusion method"),
    (["tune", "--search", "grid", "--seed", "3"], "--seed draws the points of a random search"),
], ids=["param-with-step-off", "bool-param", "qe-param", "grid", "dense-rerank-max", "fusions", "seed"])
def test_an_option_without_what_it_acts_on_is_an_error_not_ignored(tmp_path, argv, message):
    out = ["--out", str(tmp_path / "o.txt")]
    res = CliRunner().invoke(ensemble, [*argv, "--models", "a", "--features-dir", str(tmp_path), "--data-root",
                                        str(tmp_path), *out])
    assert res.exit_code == 2 and message in res.output, res.output
