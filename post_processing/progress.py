"""Progress bars that stay out of logs: every tqdm bar of the toolkit is made here, and is drawn only
when asked for, not turned off (``--no-progress``) and its stream (stderr) is a terminal, so a log
file never collects a carriage-return line per update."""
from __future__ import annotations

import sys
from typing import Any, Iterable, Optional, TextIO

__all__ = ["progress_bar", "set_progress", "show_progress"]

_enabled = True


def set_progress(enabled: bool) -> None:
    """Turn every later bar of this process on (the default, terminals only) or off (``--no-progress``)."""
    global _enabled
    _enabled = bool(enabled)


def show_progress(requested: Optional[bool] = True, stream: Optional[TextIO] = None) -> bool:
    """Whether a bar is drawn: ``requested`` (None counts as yes), not turned off, and ``stream``
    (default stderr, where tqdm writes) is a terminal."""
    stream = sys.stderr if stream is None else stream
    if requested is False or not _enabled:
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress_bar(iterable: Optional[Iterable] = None, progress: Optional[bool] = True, **kwargs: Any):
    """``tqdm(iterable, **kwargs)``, disabled unless :func:`show_progress` says otherwise."""
    from tqdm import tqdm

    return tqdm(iterable, disable=not show_progress(progress, kwargs.get("file")), **kwargs)
