"""File helpers shared by every package: atomic writes and the image extensions the toolkit reads.

``atomic_write`` writes to a temporary file beside the target, then renames it over the target: a
crash or an exception mid-write leaves any previous file untouched and no partial file behind.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator

# Image files every loader, the fog tool, defog and folder search accept (compared lower-case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """``with atomic_write(p, "wb") as f: ...`` — ``p`` appears only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
