"""``python -m global_model``: commands listed with their help, one error policy (project errors are one
line, exit 1 at run time and 2 for usage; any other exception is a bug and keeps its traceback)."""
import subprocess
import sys
import types

import click
import pytest

from global_model.cli import main
from global_model.commands import COMMANDS
from post_processing.errors import ReidError, ReidUsageError


@pytest.fixture
def command():
    """Registers a throw-away ``unit-cmd`` command that raises ``command.raises`` (if set)."""
    @click.command(short_help="a command of the test file")
    def run():
        if cmd.raises is not None:
            raise cmd.raises
        return 0

    cmd = types.SimpleNamespace(command=run, raises=None)
    COMMANDS.names()  # discover the real commands first, so the listing below is complete
    COMMANDS.register("unit-cmd", cmd)
    yield cmd
    COMMANDS.unregister("unit-cmd")


def test_help_lists_every_command_with_its_help(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # no line wrapping inside a help text
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("train", "extract", "unit-cmd"):
        assert name in out and COMMANDS.get(name).command.short_help in out


@pytest.mark.parametrize("argv", [["nope"], ["unit-cmd", "--bogus"]], ids=["unknown-command", "unknown-option"])
def test_usage_mistakes_exit_2(command, argv, capsys):
    assert main(argv) == 2
    assert "Usage:" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert "reid-ensemble, version" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--config", "x.yml", "SOLVER.MAX_EPOCHS", "2", "--resum", "auto"], "no such option: --resum"),
    (["train", "--config", "x.yml", "SOLVER.MAX_EPOCHS"], "SOLVER.MAX_EPOCHS has no value"),
], ids=["mistyped-flag-after-overrides", "key-without-value"])
def test_override_mistakes_are_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_flags_after_overrides_and_negative_values_parse(tmp_path, capsys):
    """``--resume`` after KEY VALUE pairs is an option, and ``-1`` is a value, not an option."""
    assert main(["extract", "--out-dir", str(tmp_path), "--name", "x", "MODEL.X", "-1",
                 "--checkpoint", str(tmp_path / "no.pth")]) == 1
    assert capsys.readouterr().err == f"error: checkpoint not found: {tmp_path / 'no.pth'}\n"


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "train" in capsys.readouterr().out


@pytest.mark.parametrize("error, code", [(ReidError("bad file x.pkl"), 1), (ReidUsageError("bad key X"), 2)],
                         ids=["runtime", "usage"])
def test_project_error_is_one_line(command, capsys, error, code):
    command.raises = error
    assert main(["unit-cmd"]) == code
    assert capsys.readouterr().err == f"error: {error}\n"


def test_programming_error_keeps_its_traceback(command):
    command.raises = ValueError("a bug")
    with pytest.raises(ValueError, match="a bug"):
        main(["unit-cmd"])


def test_entry_points_exit_with_the_error_code(tmp_path):
    """Both entry points (``mgn_model`` is an alias) exit 1 with one line for a missing checkpoint."""
    for package in ("global_model", "mgn_model"):
        res = subprocess.run([sys.executable, "-m", package, "extract", "--checkpoint", str(tmp_path / "no.pth"),
                              "--out-dir", str(tmp_path), "--name", "x"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 1, res.stderr
        assert res.stderr == f"error: checkpoint not found: {tmp_path / 'no.pth'}\n"
