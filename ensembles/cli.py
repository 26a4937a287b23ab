"""``ensemble``: fuse, tune, validate, evaluate, search, visualize, steps, ... (one module each in
:mod:`ensembles.commands`).

The step options of ``fuse``/``tune`` are generated from the step registry
(:mod:`ensembles.cli_steps`). Error policy (shared with ``python -m global_model``, see
:class:`global_model.cli.RegistryGroup`): a project error (:class:`post_processing.errors.ReidError`:
bad feature files, dataset layout, pipeline YAML, submission ...) prints ``error: <message>`` naming
the file, step or key and exits 1, or 2 for a usage error, like click's own usage errors; anything
else is a bug and keeps its traceback.

Outputs: every output path is checked before any computation (``check_outputs``), and a command
with several outputs writes them together at the end (``write_together``): a failing command leaves
every previous output as it was.
"""
from __future__ import annotations

import os

import click

from global_model.cli import RegistryGroup, package_version
from post_processing.progress import set_progress

from .commands import COMMANDS


@click.group(cls=RegistryGroup, registry=COMMANDS)
@click.version_option(package_version(), "--version", prog_name="reid-ensemble")
@click.option("--no-progress", is_flag=True,
              help="no progress bars (they are drawn only when stderr is a terminal anyway)")
def main(no_progress):
    """Fuse ReID features of several models into challenge submissions."""
    set_progress(not no_progress)
    # Before any numba kernel runs: idle OpenMP workers otherwise spin, burning the CPUs others need.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
