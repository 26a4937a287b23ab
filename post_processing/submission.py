"""AIC ``track2.txt`` submission files: write, read (two real-world forms) and validate.

Format (DESIGN.md): one line per query in ``name_query.txt`` order, each exactly ``topk`` (100)
space-separated 1-based gallery indices (the number in ``name_test.txt`` order, = the number in an
AIC file name), no trailing space, a newline at the end.

Readers accept that integer form and the file-name form some teams write (``000123.jpg``): a
name is looked up in ``gallery_names`` when given, else read as the number in an AIC-style name.

Tolerated (the scorer splits lines on whitespace, so they change nothing): CRLF line ends,
trailing whitespace, runs of spaces/tabs between entries, a UTF-8 BOM, a missing final newline.
Errors, each reported as ``"<path>:<line>: <problem>"``: undecodable bytes, empty lines (they
shift every later line onto the wrong query), non-integer tokens, unknown file names, ids out of
range, duplicate ids in a line, a line without exactly ``topk`` entries, a line count different
from the number of queries.
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .fileio import atomic_write
from .errors import ReidError

TOPK = 100
_INT = re.compile(r"[+-]?\d+")
_FILE_NAME = re.compile(r".+\.(?:jpe?g|png|bmp)", re.IGNORECASE)
_AIC_NAME = re.compile(r"(\d+)\.jpg", re.IGNORECASE)


class SubmissionError(ReidError, ValueError):
    """A track2 file that cannot be read; ``problems`` holds every ``"<path>:<line>: <problem>"``."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def write_track2(path: str, ranking, topk: int = TOPK, num_gallery: Optional[int] = None) -> None:
    """Write the first ``topk`` columns of ``ranking`` as a track2 file, atomically.

    ranking: (nq, ≥topk) 0-based gallery indices, best first; written 1-based. Each row's first
    ``topk`` entries must be distinct and ≥ 0 (and < ``num_gallery`` when given).
    """
    r = np.asarray(ranking)
    if r.ndim != 2 or (r.size and not np.issubdtype(r.dtype, np.integer)):
        raise ValueError(f"ranking must be a 2-D integer array (nq×K), got shape {r.shape} dtype {r.dtype}")
    if r.shape[1] < topk:
        raise ValueError(f"ranking has {r.shape[1]} columns, track2 needs {topk} per query")
    r = r[:, :topk].astype(np.int64)
    for q, row in enumerate(r):
        if row.min() < 0 or (num_gallery is not None and row.max() >= num_gallery):
            bad = int(row.min() if row.min() < 0 else row.max())
            limit = "" if num_gallery is None else f" < {num_gallery}"
            raise ValueError(f"ranking row {q}: gallery index {bad} out of range (expected 0 <= index{limit})")
        if len(np.unique(row)) != topk:
            raise ValueError(f"ranking row {q}: repeated gallery indices in the first {topk} entries")
    with atomic_write(path, "w", newline="\n") as f:
        f.write("".join(" ".join(map(str, row + 1)) + "\n" for row in r))


def _name_lookup(gallery_names: Optional[Sequence[str]]) -> Optional[Dict[str, int]]:
    if gallery_names is None:
        return None
    return {os.path.basename(str(n)): i for i, n in enumerate(gallery_names)}


def _resolve(token: str, lookup: Optional[Dict[str, int]]) -> Tuple[Optional[int], Optional[str]]:
    """(1-based id, None) for a token, or (None, problem)."""
    if _INT.fullmatch(token):
        return int(token), None
    if _FILE_NAME.fullmatch(token):
        name = os.path.basename(token)
        if lookup is not None:
            if name in lookup:
                return lookup[name] + 1, None
            return None, f"unknown file name {token!r} (not in the gallery name list)"
        m = _AIC_NAME.fullmatch(name)
        if m:
            return int(m.group(1)), None
        return None, f"unknown file name {token!r} (not an AIC-style number name; pass gallery_names)"
    return None, f"non-integer token {token!r}"


class _Parsed:
    """A parsed file: per line the token count and the (token, 1-based id) pairs that resolved."""

    def __init__(self, path: str):
        self.path = path
        self.counts: List[int] = []
        self.rows: List[List[Tuple[str, int]]] = []
        self.problems: List[Tuple[int, str]] = []

    def add(self, lineno: int, problem: str) -> None:
        self.problems.append((lineno, problem))

    def report(self) -> List[str]:
        """Problems as ``"<path>:<line>: <problem>"``, in line order (stable within a line)."""
        return [f"{self.path}:{n}: {p}" for n, p in sorted(self.problems, key=lambda item: item[0])]


def _parse(path: str, gallery_names) -> _Parsed:
    """Split a track2 file into lines and tokens, recording decoding, empty-line and token problems."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    lookup = _name_lookup(gallery_names)
    parsed = _Parsed(path)
    for lineno, raw in enumerate(raw_lines, start=1):
        try:
            tokens = raw.decode("utf-8").split()
        except UnicodeDecodeError as e:
            parsed.add(lineno, f"undecodable bytes ({e.reason} at byte {e.start})")
            tokens = []
        else:
            if not tokens:
                parsed.add(lineno, "empty line")
        row = []
        bad: Dict[str, None] = {}
        for tok in tokens:
            value, problem = _resolve(tok, lookup)
            if problem:
                bad.setdefault(problem, None)
            else:
                row.append((tok, value))
        for problem in bad:
            parsed.add(lineno, problem)
        parsed.counts.append(len(tokens))
        parsed.rows.append(row)
    return parsed


def read_track2(path: str, gallery_names: Optional[Sequence[str]] = None) -> List[List[int]]:
    """Read a track2 file (integer or file-name form) into per-query lists of 0-based gallery indices.

    Strict: raises ``SubmissionError`` listing every line that does not parse or holds an id < 1.
    Entry counts, duplicates and the upper range are checked by ``validate_track2``.
    """
    parsed = _parse(path, gallery_names)
    for lineno, row in enumerate(parsed.rows, start=1):
        low = [tok for tok, v in row if v < 1]
        if low:
            parsed.add(lineno, f"ids are 1-based, got {', '.join(low)}")
    if parsed.problems:
        raise SubmissionError(parsed.report())
    return [[v - 1 for _, v in row] for row in parsed.rows]


def validate_track2(path: str, num_query: int, num_gallery: int,
                    gallery_names: Optional[Sequence[str]] = None, topk: int = TOPK) -> List[str]:
    """Every problem of a track2 file as ``"<path>:<line>: <problem>"``, in line order; [] if valid.

    Checks: ``num_query`` lines, each exactly ``topk`` distinct ids in 1..``num_gallery`` (integer
    or file-name form; names resolved via ``gallery_names`` when given), plus the parse errors
    listed in the module docstring. A missing or unreadable file is one problem on line 0.
    """
    if gallery_names is not None and len(gallery_names) != num_gallery:
        raise ValueError(f"gallery_names has {len(gallery_names)} names but num_gallery is {num_gallery}")
    try:
        parsed = _parse(path, gallery_names)
    except OSError as e:
        return [f"{path}:0: cannot read file ({e.strerror or e})"]
    for lineno, (count, row) in enumerate(zip(parsed.counts, parsed.rows), start=1):
        out = [tok for tok, v in row if not 1 <= v <= num_gallery]
        if out:
            parsed.add(lineno, f"id(s) out of range 1..{num_gallery}: {', '.join(out)}")
        seen, dups = set(), []
        for tok, v in row:
            if v in seen and tok not in dups:
                dups.append(tok)
            seen.add(v)
        if dups:
            parsed.add(lineno, f"duplicate id(s): {', '.join(dups)}")
        if count and count != topk:
            parsed.add(lineno, f"{count} entries, expected {topk}")
    n_lines = len(parsed.rows)
    if n_lines < num_query:
        parsed.add(n_lines + 1, f"missing line(s): file has {n_lines} lines, expected {num_query} (one per query)")
    elif n_lines > num_query:
        parsed.add(num_query + 1, f"extra line(s): file has {n_lines} lines, expected {num_query} (one per query)")
    return parsed.report()
