"""Scores of a ranking, the metrics table `ensemble fuse` prints, and the metrics JSON it writes.

Every score comes from the top-K ranking a submission would contain (:func:`score`), so the
numbers of the final row equal `ensemble evaluate` on the written ``track2.txt``.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

from post_processing.errors import ReidError
from post_processing.evaluation import aic_average_precisions, aic_map, average_precisions, evaluate_ranking
from post_processing.fileio import atomic_write
from post_processing.protocols import evaluate_protocol, is_whole_test_set
from post_processing.submission import TOPK

from .pipeline import Labels

COLUMNS = (("mAP", "mAP"), ("aic_map", "AIC mAP@100"), ("rank1", "rank-1"), ("rank5", "rank-5"),
           ("rank10", "rank-10"), ("mINP", "mINP"))
MAX_RANK = 50


class ScoreError(ReidError, ValueError):
    """A ranking that cannot be scored: the dataset has no ground truth."""


def score(ranking: np.ndarray, labels: Labels, topk: int = TOPK) -> Dict[str, Any]:
    """mAP/mINP/CMC under the dataset's protocol (``labels.protocol``: Market rules, same id and camera
    is junk; CUHK03 classic: single-shot CMC) and AIC mAP@``topk`` of a ranking.

    For a whole-test-set protocol (VehicleID) ``ranking`` is the N×N distance matrix of all test images
    (:meth:`ensembles.inputs.Inputs.scored`): every score is the mean over the protocol's draws, each
    ranked within its own gallery, and ``draws`` holds each draw's."""
    if not labels.has_gt:
        raise ScoreError("scoring needs ground truth (AIC20: query_label.xml and test_label.xml)")
    if is_whole_test_set(labels.protocol):
        res = evaluate_protocol(labels.protocol, ranking, labels.q_pids, labels.g_pids, labels.q_camids,
                                labels.g_camids, **{"max_rank": MAX_RANK, "topk": topk, **labels.protocol_options})
        cmc = [float(x) for x in np.asarray(res["cmc"]).reshape(-1)]
        return {"mAP": float(res["mAP"]), "aic_map": float(res["aic_map"]), "mINP": float(res["mINP"]),
                **{f"rank{n}": cmc[min(n, len(cmc)) - 1] for n in (1, 5, 10)}, "cmc": cmc, "draws": res["draws"]}
    ranking = np.asarray(ranking)[:, :topk]
    res = evaluate_protocol(labels.protocol, ranking, labels.q_pids, labels.g_pids, labels.q_camids,
                            labels.g_camids, **{"max_rank": MAX_RANK, **labels.protocol_options})
    cmc = [float(x) for x in np.asarray(res["cmc"]).reshape(-1)]
    at = {n: cmc[min(n, len(cmc)) - 1] for n in (1, 5, 10)}
    out = {"mAP": float(res["mAP"]), "aic_map": float(aic_map(ranking, labels.q_pids, labels.g_pids, topk=topk)),
           "mINP": float(res["mINP"]), "rank1": at[1], "rank5": at[5], "rank10": at[10], "cmc": cmc}
    for name, mask in labels.query_subsets.items():
        sub = evaluate_ranking(ranking[mask], labels.q_pids[mask], labels.g_pids, labels.q_camids[mask],
                               labels.g_camids, max_rank=MAX_RANK)
        out[f"mAP_{name}"] = float(sub["mAP"])
    return out


def per_query_scores(ranking: np.ndarray, labels: Labels, objective: str, topk: int = TOPK) -> Optional[np.ndarray]:
    """Each query's share of :func:`score`'s ``objective`` (``mAP`` or ``aic_map``): per-query APs
    whose mean over the non-NaN entries is that score (NaN: no valid match), so that a subset of the
    queries can be scored without ranking again. None where the protocol's score is not such a mean
    (CUHK03 classic's repeated single-shot draws, whole-test-set protocols)."""
    ranking = np.asarray(ranking)[:, :topk]
    options = set(labels.protocol_options) - {"max_rank"}  # max_rank shapes the CMC only
    if objective == "aic_map":
        return aic_average_precisions(ranking, labels.q_pids, labels.g_pids, topk=topk)
    if objective == "mAP" and labels.protocol == "aic" and options <= {"topk"}:
        return aic_average_precisions(ranking, labels.q_pids, labels.g_pids,
                                      topk=int(labels.protocol_options.get("topk", 100)))
    if objective == "mAP" and labels.protocol == "market" and not options:
        return average_precisions(ranking, labels.q_pids, labels.g_pids, labels.q_camids, labels.g_camids)
    return None


def format_table(rows: Iterable[Tuple[str, Mapping[str, Any]]], gains: Optional[Sequence[Optional[float]]] = None) -> str:
    """Fixed-width table, one row per (label, scores), values in percent.

    ``gains`` (one per row, None for blank) adds a last column, e.g. the mAP change a step made.
    Subset scores of the first row (``mAP_<name>`` keys, see :func:`score`) get a column each.
    """
    rows = list(rows)
    width = max([len(label) for label, _ in rows] + [10])
    subsets = [k for k in (rows[0][1] if rows else {}) if k.startswith("mAP_")]
    columns = list(COLUMNS) + [(k, f"mAP {k[4:]} q") for k in subsets]
    head = f"{'':{width}s}" + "".join(f"  {title:>11s}" for _, title in columns)
    if gains is not None:
        head += f"  {'mAP gain':>9s}"
    lines = [head, "-" * len(head)]
    for i, (label, m) in enumerate(rows):
        line = f"{label:{width}s}" + "".join(f"  {100 * m[key]:11.2f}" for key, _ in columns)
        if gains is not None and gains[i] is not None:
            line += f"  {100 * gains[i]:+9.2f}"
        lines.append(line)
    return "\n".join(lines)


def write_json(path: str, data: Mapping[str, Any]) -> None:
    """Atomic, indented JSON (numpy scalars/arrays converted)."""

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(f"cannot write {type(o).__name__} to JSON")

    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=default)
        f.write("\n")


def format_validation(table: Sequence[Mapping[str, Any]]) -> str:
    """The validation table of ``ensemble tune`` (rows of ``AscentResult.table``): scores, each
    row's mAP gain and whether the tuner kept it, and why."""
    scored = [r for r in table if r.get("scores")]
    text = format_table([(r["label"], r["scores"]) for r in scored], [r.get("gain") for r in scored])
    lines = text.splitlines()
    width = max(len(line) for line in lines)
    out = [lines[0].ljust(width) + "  kept", lines[1] + "-" * 6]
    for r, line in zip(scored, lines[2:]):
        out.append(line.ljust(width) + ("  yes " if r.get("kept") else "  no  ") + (r.get("why") or ""))
    out += [f"{r['label']}: {r['why']}" for r in table if not r.get("scores")]
    return "\n".join(out)


def tuner_summary(validation: Mapping[str, Any]) -> str:
    """What ``ensemble tune`` kept and dropped, each with its validation gain (from a pipeline's
    ``validation`` record): the lines `ensemble fuse --pipeline` prints under the test table."""
    split = validation.get("split", "validation")
    lines = [f"chosen on the {split} split ({validation.get('trials', '?')} pipelines scored):"]
    for r in validation.get("rows") or []:
        if r.get("stage") in ("model", "fusion", "step"):
            mark = "kept   " if r.get("kept") else "dropped"
            lines.append(f"  {mark} {r['label']}: {r.get('why', '')}")
    return "\n".join(lines)
