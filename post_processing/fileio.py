"""File helpers shared by every package: atomic writes, output checks and the image extensions read.

``atomic_write`` writes to a temporary file beside the target, then renames it over the target: a
crash or an exception mid-write leaves any previous file untouched and no partial file behind. The
file gets the mode a plain ``open(path, "w")`` would give it: the umask's for a new file, the old
file's for a replaced one. Inside ``write_together()`` the renames wait for the end of the block, so
a command with several outputs replaces all of them or none. ``check_output`` tells before any
computation whether a path can be written at all.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import stat
import uuid
from typing import IO, Iterator, List, Optional, Tuple

from .errors import ReidError

# Image files every loader, the fog tool, defog and folder search accept (compared lower-case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# The (temporary, target) renames a write_together() block still owes; None outside one.
_PENDING: contextvars.ContextVar[Optional[List[Tuple[str, str]]]] = contextvars.ContextVar("pending", default=None)


class OutputError(ReidError, OSError):
    """An output path that cannot be written: names the path, the option when known, and why."""


def _create_temp(path: str) -> Tuple[int, str]:
    """A new empty file beside ``path``, created like ``open(path, "w")`` would be (umask honoured)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        while True:
            tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), tmp
            except FileExistsError:
                continue
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def _commit(tmp: str, path: str) -> None:
    """Renames ``tmp`` over ``path``, giving it the mode of the file it replaces."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """``with atomic_write(p, "wb") as f: ...`` — ``p`` appears only if the block succeeds (and, inside
    :func:`write_together`, only when that block succeeds)."""
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        pending = _PENDING.get()
        if pending is None:
            _commit(tmp, path)
        else:
            pending.append((tmp, path))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def write_together() -> Iterator[None]:
    """Every :func:`atomic_write` in the block is renamed into place at its end, all together; if the
    block fails none is, and their temporary files are removed. Nested blocks join the outer one."""
    if _PENDING.get() is not None:
        yield
        return
    pending: List[Tuple[str, str]] = []
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    finally:
        _PENDING.reset(token)
    for i, (tmp, path) in enumerate(pending):
        try:
            _commit(tmp, path)
        except BaseException:
            for rest, _ in pending[i:]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(rest)
            raise


def check_output(path: str, what: Optional[str] = None) -> None:
    """Raises :class:`OutputError` unless ``path`` can be written: not a folder, and its folder exists
    and is writable or can be created (a file is replaced by a rename, so its own mode does not
    matter). ``what`` (e.g. ``"--out"``) is named in the message."""
    name = f"{what} {path}" if what else path
    if os.path.isdir(path):
        raise OutputError(f"{name}: is a folder, expected a file name")
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    if not os.path.isdir(folder):
        raise OutputError(f"{name}: cannot create its folder, {folder} is a file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{name}: folder {folder} is not writable")


def iter_images(src: str) -> Iterator[str]:
    """Relative paths of the image files under ``src`` at any depth (folders in name order, files
    sorted within each; hidden entries skipped)."""
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                yield os.path.relpath(os.path.join(root, name), src)
