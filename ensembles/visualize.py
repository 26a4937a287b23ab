"""Pictures of a ranking: a rank-list grid (OpenCV) and the CMC curves it gives (drawn by :mod:`.plots`).

A ranking from any source becomes a :class:`RankingView` (a dataset's track2.txt: :func:`view_of_ranking`;
`ensemble search` results: :func:`view_of_results`); :func:`select_queries` picks the rows (worst AP
first by default, where users look for failures; best, spread, or by name). In the grid each row is
one query (blue border, its AP in the label when known) followed by its top-k gallery images, with a
green border for the query's identity, red for another identity, grey when either is unknown. The
grid is written atomically as PNG.
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import cv2
import numpy as np

from global_model.data.image_io import read_image
from global_model.data.records import ImageRecord
from post_processing.errors import ReidError, ReidUsageError
from post_processing.evaluation import average_precisions
from post_processing.fileio import atomic_write
from post_processing.submission import read_track2

from .pipeline import Labels
from .report import score

BLUE, GREEN, RED, GREY = (40, 90, 220), (30, 170, 60), (210, 40, 40), (150, 150, 150)  # RGB
CELL = (128, 128)  # H, W of one image
BORDER = 4
LABEL_H = 16
ORDERS = ("worst", "best", "spread")  # which queries a rank list shows: lowest AP first, highest, worst to best


class VisualizeError(ReidError, ValueError):
    """A track2 that does not fit the dataset, an unreadable metrics or results JSON, or a CMC without ground truth."""


class VisualizeUsageError(VisualizeError, ReidUsageError):
    """A query name that is not in the ranking, or an AP order asked for without identities."""


def read_ranking(track2: str, num_query: int, gallery_names: Sequence[str], data_root: str) -> np.ndarray:
    """The ranking in ``track2`` as a Q×K array, K the shortest line; one line per query of ``data_root``,
    every id one of its gallery images."""
    ranking = read_track2(track2, gallery_names)
    if len(ranking) != num_query:
        raise VisualizeError(f"{track2} has {len(ranking)} lines, {data_root} has {num_query} queries")
    for line, row in enumerate(ranking, 1):
        if row and max(row) >= len(gallery_names):
            raise VisualizeError(f"{track2}:{line}: id {max(row) + 1} out of range 1..{len(gallery_names)} "
                                 f"(the gallery of {data_root})")
    width = min(len(r) for r in ranking)
    return np.asarray([r[:width] for r in ranking], dtype=np.int64)


def spread_rows(count: int, total: int) -> List[int]:
    """At most ``count`` query indices spread evenly over ``total`` queries, first and last included."""
    return sorted(set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist()))


def _cell(path: str, color, label: str) -> np.ndarray:
    """The image at ``path`` letterboxed into ``CELL`` with a coloured border and a label strip on top."""
    img = read_image(path)
    h, w = CELL
    scale = min(h / img.shape[0], w / img.shape[1])
    size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
    small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    canvas = np.full((h, w, 3), 255, np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    framed = cv2.copyMakeBorder(canvas, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT, value=color)
    strip = np.full((LABEL_H, framed.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, label[:20], (2, LABEL_H - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, framed])


def _encode_png(image_rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("OpenCV could not encode the PNG")
    return buf.tobytes()


@dataclass
class RankingView:
    """What a rank-list picture shows, whatever the ranking came from (a dataset + track2, search results):
    each query's ranked gallery indices into ``gallery_paths``, identities (None where unknown) and AP
    (NaN where unknown)."""

    query_names: List[str]
    query_paths: List[str]
    gallery_paths: List[str]
    ranking: np.ndarray
    q_ids: List[Optional[Any]]
    g_ids: List[Optional[Any]]
    ap: np.ndarray

    @property
    def has_ap(self) -> bool:
        return bool(np.any(~np.isnan(self.ap)))


def view_of_ranking(query: Sequence[ImageRecord], gallery: Sequence[ImageRecord], ranking: np.ndarray,
                    labels: Labels) -> RankingView:
    """A dataset's ranking (e.g. a track2.txt): AP per query under the evaluation protocol when the
    dataset has ground truth (the fuse metrics' numbers: matches beyond the list count as missed)."""
    ranking = np.asarray(ranking)
    if labels.has_gt:
        ap = average_precisions(ranking, labels.q_pids, labels.g_pids, labels.q_camids, labels.g_camids)
        q_ids, g_ids = labels.q_pids.tolist(), labels.g_pids.tolist()
    else:
        ap, q_ids, g_ids = np.full(len(query), np.nan), [None] * len(query), [None] * len(gallery)
    return RankingView([r.name for r in query], [r.path for r in query], [r.path for r in gallery], ranking,
                       q_ids, g_ids, ap)


def read_results(path: str) -> Mapping[str, Any]:
    """The ``results.json`` `ensemble search` wrote."""
    from .search import RESULTS_FORMAT

    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise VisualizeError(f"cannot read {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise VisualizeError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, Mapping) or doc.get("format") != RESULTS_FORMAT or not isinstance(doc.get("queries"), list):
        raise VisualizeError(f"{path}: not the results.json `ensemble search` writes (format {RESULTS_FORMAT!r})")
    return doc


def view_of_results(doc: Mapping[str, Any], source: str = "results.json") -> RankingView:
    """The ranking of an `ensemble search` results document (the gallery is the images it ranked)."""
    gallery: Dict[str, int] = {}
    g_ids: List[Optional[Any]] = []
    rows = []
    try:
        for q in doc["queries"]:
            row = []
            for m in q["matches"]:
                if m["path"] not in gallery:
                    gallery[m["path"]] = len(gallery)
                    g_ids.append(m["id"])
                row.append(gallery[m["path"]])
            rows.append(row)
        queries = [(q["name"], q["path"], q["id"], np.nan if q["ap"] is None else float(q["ap"]))
                   for q in doc["queries"]]
    except (KeyError, TypeError, ValueError) as e:
        raise VisualizeError(f"{source}: a query entry lacks or mistypes {e}; expected name, path, id, ap, "
                             f"matches (rank, path, id, distance)") from None
    if not rows or not all(rows):
        raise VisualizeError(f"{source}: no queries with matches")
    width = min(len(r) for r in rows)
    return RankingView([q[0] for q in queries], [q[1] for q in queries], list(gallery),
                       np.asarray([r[:width] for r in rows], np.int64), [q[2] for q in queries], g_ids,
                       np.asarray([q[3] for q in queries], float))


def select_queries(view: RankingView, count: int, order: Optional[str] = None,
                   names: Sequence[str] = ()) -> List[int]:
    """Query rows to draw: the ones named (in that order), else ``count`` of them by ``order``:
    ``worst``/``best`` AP first, or ``spread`` evenly from the worst AP to the best (queries without an
    AP left out; without any AP: evenly over the list). ``order`` None means worst when APs are known,
    spread otherwise."""
    if names:
        where = {n: i for i, n in enumerate(view.query_names)}
        for i, n in enumerate(view.query_names):  # a bare file name finds a query kept under a folder
            where.setdefault(os.path.basename(n), i)
        missing = [n for n in names if n not in where]
        if missing:
            close = difflib.get_close_matches(missing[0], list(where), n=3)
            raise VisualizeUsageError(f"query {missing[0]!r} is not among the {len(view.query_names)} queries"
                                 + (f"; did you mean {', '.join(close)}?" if close else ""))
        return [where[n] for n in names]
    if order is None:
        order = "worst" if view.has_ap else "spread"
    if order == "spread" and not view.has_ap:
        return spread_rows(count, len(view.query_names))
    if order not in ORDERS:
        raise VisualizeUsageError(f"unknown order {order!r}; expected one of {', '.join(ORDERS)}")
    if not view.has_ap:
        raise VisualizeUsageError(f"--order {order} needs each query's AP, which needs query and gallery identities "
                             f"(ground truth); use --order spread")
    scored = np.flatnonzero(~np.isnan(view.ap))
    # Stable sorts: equal APs keep the query order, so the picture is reproducible.
    ranked = scored[np.argsort(-view.ap[scored] if order == "best" else view.ap[scored], kind="stable")]
    if order == "spread":
        return ranked[spread_rows(count, len(ranked))].tolist()
    return ranked[:count].tolist()


def ranklist_grid(out: str, view: RankingView, rows: Sequence[int], k: int = 10) -> None:
    """PNG at ``out``: for each query index in ``rows``, the query (labelled with its AP when known) then
    its top-``k``; borders green/red for right/wrong identity, grey where either identity is unknown."""
    k = min(k, view.ranking.shape[1])
    lines = []
    gap = np.full((CELL[0] + 2 * BORDER + LABEL_H, 12, 3), 255, np.uint8)
    for q in rows:
        name = os.path.basename(view.query_paths[q])
        label = f"q {name}" if np.isnan(view.ap[q]) else f"AP {100 * view.ap[q]:.1f} {name}"
        cells = [_cell(view.query_paths[q], BLUE, label), gap]
        for rank, g in enumerate(view.ranking[q, :k], 1):
            qid, gid = view.q_ids[q], view.g_ids[g]
            color = GREY if qid is None or gid is None else GREEN if str(gid) == str(qid) else RED
            cells.append(_cell(view.gallery_paths[g], color, f"{rank}: {os.path.basename(view.gallery_paths[g])}"))
        lines.append(np.hstack(cells))
    if not lines:
        raise VisualizeError("no query to draw")
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 6), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    with atomic_write(out, "wb") as f:
        f.write(_encode_png(np.vstack(lines)))


def curves_from_metrics(metrics: Mapping) -> dict:
    """CMC curves of a ``fuse --metrics-out`` document: each model, the fusion, then each step."""
    curves = {f"model {m}": s["cmc"] for m, s in (metrics.get("per_model") or {}).items()}
    if metrics.get("fusion"):
        curves["fusion"] = metrics["fusion"]["cmc"]
    for step in metrics.get("steps") or []:
        if step.get("cmc"):
            curves[f"+ {step['label']}"] = step["cmc"]
    if not curves and metrics.get("cmc"):
        curves["final"] = metrics["cmc"]
    return curves


def cmc_curves(track2: str, ranking: np.ndarray, labels: Labels, metrics: Optional[str] = None) -> Dict[str, list]:
    """The curves to plot: every row of a ``fuse --metrics-out`` JSON, else the ranking's own CMC."""
    if metrics:
        try:
            with open(metrics, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as e:
            raise VisualizeError(f"cannot read {metrics}: {e.strerror or e}") from None
        except json.JSONDecodeError as e:
            raise VisualizeError(f"{metrics}: not valid JSON ({e})") from None
        if not isinstance(data, Mapping):
            raise VisualizeError(f"{metrics}: expected the JSON object fuse --metrics-out writes")
        return curves_from_metrics(data)
    if not labels.has_gt:
        raise VisualizeError("--cmc-out needs ground truth (query_label.xml/test_label.xml) or --metrics")
    return {os.path.basename(track2): score(ranking, labels, ranking.shape[1])["cmc"]}
