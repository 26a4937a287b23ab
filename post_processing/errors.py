"""The project's error classes: what the command lines turn into one line instead of a traceback.

Every bad-input error of the toolkit (config key, dataset file, checkpoint, feature file, pipeline
step ...) derives from :class:`ReidError`; both CLIs catch exactly these, print ``error: <message>``
and exit 1, or 2 for a :class:`ReidUsageError` (a wrong option or override). Anything else is a
programming error and keeps its traceback.
"""
from __future__ import annotations

__all__ = ["EXIT_RUNTIME", "EXIT_USAGE", "ReidError", "ReidUsageError", "exit_code"]

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class ReidError(Exception):
    """Bad input found at run time (a file, a key, a value): the message names it and what was expected."""


class ReidUsageError(ReidError):
    """A command used wrongly: an unknown or ill-typed option, override or name."""


def exit_code(exc: ReidError) -> int:
    """The process exit status for a project error: 2 for usage errors, 1 otherwise."""
    return EXIT_USAGE if isinstance(exc, ReidUsageError) else EXIT_RUNTIME
