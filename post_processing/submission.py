"""AIC ``track2.txt`` submission files: write, read (two real-world forms) and validate.

Format (README, "File formats"): plain ASCII, one line per query in ``name_query.txt`` order, each
exactly ``topk`` (100) 1-based gallery indices (the number in ``name_test.txt`` order, = the number
in an AIC file name) in ASCII digits separated by single spaces, no leading or trailing space, every
line ended by ``\n``.

``validate_track2`` accepts exactly that: anything else is a problem, each reported as
``"<path>:<line>: <problem>"``. The readers are lenient about what cannot change the ranking read
(the *format* problems): CRLF line ends, tabs or runs of spaces, leading/trailing whitespace, a UTF-8
BOM, a missing final newline, and the file-name form some teams write (``000123.jpg``: looked up in
``gallery_names`` when given, else read as the number in an AIC-style name). Everywhere an error:
undecodable bytes, non-ASCII characters (Unicode digits or no-break spaces would otherwise read as
numbers and separators), CR-only line ends, empty lines (they shift every later line onto the wrong
query), non-integer tokens, unknown file names; ``validate_track2`` adds ids out of range, duplicate
ids in a line, a line without exactly ``topk`` entries and a line count different from the number
of queries.
"""
from __future__ import annotations

import os
import re
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .fileio import atomic_write
from .errors import ReidError

TOPK = 100
_INT = re.compile(r"[+-]?[0-9]+")  # ASCII digits: int() would also read Arabic-Indic or full-width ones
_FILE_NAME = re.compile(r".+\.(?:jpe?g|png|bmp)", re.IGNORECASE)
_AIC_NAME = re.compile(r"([0-9]+)\.jpg", re.IGNORECASE)
_LINE_END = re.compile(rb"\r\n|\r|\n")
_SEPARATOR = re.compile(r"[ \t]+")


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
    """A parsed file: per line the token count and the (token, 1-based id) pairs that resolved, and the
    problems found; a *format* problem is one only ``validate_track2`` reports (see the module doc)."""

    def __init__(self, path: str):
        self.path = path
        self.counts: List[int] = []
        self.rows: List[List[Tuple[str, int]]] = []
        self.problems: List[Tuple[int, str, bool]] = []

    def add(self, lineno: int, problem: str, format_only: bool = False) -> None:
        self.problems.append((lineno, problem, format_only))

    def report(self, strict: bool) -> List[str]:
        """Problems as ``"<path>:<line>: <problem>"``, in line order (stable within a line); format
        problems only when ``strict``."""
        kept = [(n, p) for n, p, format_only in self.problems if strict or not format_only]
        return [f"{self.path}:{n}: {p}" for n, p in sorted(kept, key=lambda item: item[0])]


def _split_lines(data: bytes, parsed: _Parsed) -> List[bytes]:
    """The lines of ``data`` (ended by \\n, \\r\\n or \\r), recording every line-end problem once."""
    lines, ends = [], []
    start = 0
    for m in _LINE_END.finditer(data):
        lines.append(data[start:m.start()])
        ends.append(m.group())
        start = m.end()
    if start < len(data):
        lines.append(data[start:])
        parsed.add(len(lines), "no newline at the end of the file", format_only=True)
    for end, name, format_only in ((b"\r", "CR-only (\\r, old Mac style)", False),
                                   (b"\r\n", "Windows (\\r\\n)", True)):
        at = [i for i, e in enumerate(ends, 1) if e == end]
        if at:
            parsed.add(at[0], f"{name} line ends on {len(at)} line(s), the first here; the format ends every "
                              f"line with \\n", format_only)
    return lines


def _decode(raw: bytes, lineno: int, parsed: _Parsed) -> Optional[str]:
    """The line as text, or None after recording why it is not ASCII."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        parsed.add(lineno, f"undecodable bytes ({e.reason} at byte {e.start})")
        return None
    bad = next((i for i, c in enumerate(text) if ord(c) > 127), None)
    if bad is not None:
        c = text[bad]
        parsed.add(lineno, f"non-ASCII character U+{ord(c):04X} ({unicodedata.name(c, 'unnamed')}) at column "
                           f"{bad + 1}; the format is ASCII digits separated by spaces")
        return None
    return text


def _parse(path: str, gallery_names) -> _Parsed:
    """Split a track2 file into lines and tokens, recording line-end, decoding, token and format problems."""
    with open(path, "rb") as f:
        data = f.read()
    parsed = _Parsed(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        parsed.add(1, "UTF-8 byte-order mark at the start; the format is plain ASCII", format_only=True)
    lookup = _name_lookup(gallery_names)
    first_name = None
    for lineno, raw in enumerate(_split_lines(data, parsed), start=1):
        text = _decode(raw, lineno, parsed)
        tokens = [] if text is None else [t for t in _SEPARATOR.split(text) if t]
        if text is not None and not tokens:
            parsed.add(lineno, "empty line")
        elif text is not None and text != " ".join(tokens):
            parsed.add(lineno, "entries must be separated by single spaces, without tabs or leading/trailing "
                               "spaces", format_only=True)
        row = []
        bad: Dict[str, None] = {}
        signed = []
        for tok in tokens:
            value, problem = _resolve(tok, lookup)
            if problem:
                bad.setdefault(problem, None)
                continue
            row.append((tok, value))
            if _FILE_NAME.fullmatch(tok):
                first_name = first_name or (lineno, tok)
            elif not tok.isdigit():
                signed.append(tok)
        for problem in bad:
            parsed.add(lineno, problem)
        if signed:
            parsed.add(lineno, f"signed id(s): {', '.join(signed[:5])}; the format has plain digits", format_only=True)
        parsed.counts.append(len(tokens))
        parsed.rows.append(row)
    if first_name:
        parsed.add(first_name[0], f"file names (first: {first_name[1]!r}) instead of 1-based gallery indices",
                   format_only=True)
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
    problems = parsed.report(strict=False)
    if problems:
        raise SubmissionError(problems)
    return [[v - 1 for _, v in row] for row in parsed.rows]


def validate_track2(path: str, num_query: int, num_gallery: int,
                    gallery_names: Optional[Sequence[str]] = None, topk: int = TOPK) -> List[str]:
    """Every problem of a track2 file as ``"<path>:<line>: <problem>"``, in line order; [] if valid.

    Checks: ``num_query`` lines, each exactly ``topk`` distinct ids in 1..``num_gallery`` (integer
    or file-name form; names resolved via ``gallery_names`` when given), plus the parse errors
    and format problems listed in the module docstring. A missing or unreadable file is one problem
    on line 0.
    """
    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
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
    return parsed.report(strict=True)
