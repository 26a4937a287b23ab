"""The ranking file: what ``ensemble fuse --out`` writes for every dataset but AIC20 (which keeps
``track2.txt``), and what ``ensemble evaluate --dataset`` scores.

Format (UTF-8 text): one line per query, in the dataset's query order: the query's image name, then
its top-K gallery image names, best first, separated by single spaces. Lines starting with ``#``
are comments (the writer puts one header line first, then any comment it is given: VehicleID's says
which draw of the test list the file ranks). Names are the images' file names, the keys
of the feature files; they cannot contain whitespace. Every line has the same K.

    # reid-ensemble ranking: 3 gallery images per query
    0001_c1s1_001051_00.jpg 0001_c2s1_000301_01.jpg 0001_c3s1_000551_02.jpg 0007_c1s1_000002_01.jpg
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from .errors import ReidError
from .fileio import atomic_write

HEADER = "# reid-ensemble ranking: {k} gallery images per query"


class RankingError(ReidError, ValueError):
    """A ranking file that does not fit the dataset; the message names the file and line."""


def _check_names(names: Sequence[str], what: str) -> None:
    bad = next((n for n in names if not n or any(c.isspace() for c in n)), None)
    if bad is not None:
        raise RankingError(f"{what} image name {bad!r} is empty or holds whitespace: a ranking file cannot hold it")


def write_ranking(path: str, query_names: Sequence[str], gallery_names: Sequence[str], ranking: np.ndarray,
                  comments: Sequence[str] = ()) -> None:
    """Write ``ranking`` (Q×K gallery indices, best first) as a ranking file at ``path`` (atomically);
    ``comments`` become ``#`` lines after the header (one line each)."""
    ranking = np.asarray(ranking)
    if ranking.ndim != 2 or len(ranking) != len(query_names):
        raise RankingError(f"{path}: a ranking of shape {ranking.shape} for {len(query_names)} queries")
    _check_names(query_names, "query")
    _check_names(gallery_names, "gallery")
    lines = [HEADER.format(k=ranking.shape[1])] + ["# " + " ".join(c.split()) for c in comments]
    lines += [" ".join([q] + [gallery_names[g] for g in row]) for q, row in zip(query_names, ranking.tolist())]
    with atomic_write(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def read_ranking(path: str, query_names: Sequence[str], gallery_names: Sequence[str]) -> np.ndarray:
    """The Q×K gallery indices of the ranking file at ``path``, rows in ``query_names`` order.

    Every query must have exactly one line, every entry must be a gallery name, once per line, and
    every line must have the same K."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError:
        raise RankingError(f"missing ranking file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RankingError(f"cannot read ranking file {path}: {exc}") from None
    q_index = {n: i for i, n in enumerate(query_names)}
    g_index = {n: i for i, n in enumerate(gallery_names)}
    rows: Dict[int, List[int]] = {}
    width = None
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{path}:{number}"
        if fields[0] not in q_index:
            raise RankingError(f"{where}: {fields[0]} is not a query image of the dataset")
        q = q_index[fields[0]]
        if q in rows:
            raise RankingError(f"{where}: query {fields[0]} has a second line")
        unknown = next((n for n in fields[1:] if n not in g_index), None)
        if unknown is not None:
            raise RankingError(f"{where}: {unknown} is not a gallery image of the dataset")
        row = [g_index[n] for n in fields[1:]]
        if len(set(row)) != len(row):
            raise RankingError(f"{where}: a gallery image is listed twice")
        if width is None:
            width = len(row)
        if len(row) != width or not row:
            raise RankingError(f"{where}: {len(row)} gallery images, the lines before have {width}")
        rows[q] = row
    missing = [n for n, i in q_index.items() if i not in rows]
    if missing:
        raise RankingError(f"{path}: no line for {len(missing)} query image(s), first {missing[0]}")
    return np.asarray([rows[i] for i in range(len(query_names))], dtype=np.int64)
