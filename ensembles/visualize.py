"""Pictures of a ranking: a rank-list grid (OpenCV) and CMC curves (matplotlib, Agg backend).

In the grid each row is one query (blue border) followed by its top-k gallery images, with a
green border for the query's identity, red for another identity, grey when there is no ground
truth. Both pictures are written atomically as PNG.
"""
from __future__ import annotations

import io
import json
import os
from typing import Dict, List, Mapping, Optional, Sequence

import cv2
import numpy as np

from global_model.data.image_io import read_image
from post_processing.errors import ReidError
from post_processing.fileio import atomic_write
from post_processing.submission import read_track2

from .pipeline import Labels
from .report import score

BLUE, GREEN, RED, GREY = (40, 90, 220), (30, 170, 60), (210, 40, 40), (150, 150, 150)  # RGB
CELL = (128, 128)  # H, W of one image
BORDER = 4
LABEL_H = 16


class VisualizeError(ReidError, ValueError):
    """A track2 that does not fit the dataset, an unreadable metrics JSON, or a CMC without ground truth."""


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


def ranklist_grid(out: str, query_paths: Sequence[str], gallery_paths: Sequence[str], ranking: np.ndarray,
                  rows: Sequence[int], k: int = 10, q_pids: Optional[np.ndarray] = None,
                  g_pids: Optional[np.ndarray] = None) -> None:
    """PNG at ``out``: for each query index in ``rows``, the query then its top-``k`` of ``ranking``.

    With ``q_pids``/``g_pids`` (ground truth) borders are green/red for right/wrong identity.
    """
    ranking = np.asarray(ranking)
    k = min(k, ranking.shape[1])
    lines = []
    gap = np.full((CELL[0] + 2 * BORDER + LABEL_H, 12, 3), 255, np.uint8)
    for q in rows:
        cells = [_cell(query_paths[q], BLUE, f"q {os.path.basename(query_paths[q])}"), gap]
        for rank, g in enumerate(ranking[q, :k], 1):
            color = GREY if q_pids is None else GREEN if g_pids[g] == q_pids[q] else RED
            cells.append(_cell(gallery_paths[g], color, f"{rank}: {os.path.basename(gallery_paths[g])}"))
        lines.append(np.hstack(cells))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 6), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    with atomic_write(out, "wb") as f:
        f.write(_encode_png(np.vstack(lines)))


def cmc_plot(out: str, curves: Mapping[str, Sequence[float]], title: str = "CMC") -> None:
    """PNG at ``out`` with one CMC curve (fractions per rank, rank 1 first) per label."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    try:
        for label, cmc in curves.items():
            cmc = np.asarray(cmc, dtype=float)
            ax.plot(np.arange(1, len(cmc) + 1), 100 * cmc, label=label, linewidth=1.6)
        ax.set_xlabel("rank")
        ax.set_ylabel("matching rate (%)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    with atomic_write(out, "wb") as f:
        f.write(buf.getvalue())


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
