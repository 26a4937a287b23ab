"""Runs a pipeline on loaded inputs and scores every stage: each model alone, the fusion, each step.

What `ensemble fuse` computes (and `ensemble tune` repeats per trial, unscored); the fusion itself is
:mod:`ensembles.fusion`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from post_processing.evaluation import average_precisions
from post_processing.submission import TOPK

from .fusion import make_blocks
from .inputs import Inputs, dataset_notes, ranking_scope
from .pipeline import DENSE_RERANK_MAX, Pipeline, PipelineError, State, Step, run_pipeline
from .report import score


@dataclass
class FuseResult:
    """The final ranking (Q×topk gallery indices, what ``--out`` holds) and, with ground truth, the scores of
    every stage; ``scored`` is what :func:`score` reads of the final stage (the ranking, or for a whole-test-set
    protocol the N×N distances: :meth:`Inputs.scored`), ``ranking_file`` the written ranking's own scores
    where they are not the final row's (VehicleID: one draw)."""

    ranking: np.ndarray
    scored: Optional[np.ndarray] = None
    ranking_file: Optional[Dict[str, Any]] = None
    per_model: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    fusion: Optional[Dict[str, Any]] = None
    steps: List[Dict[str, Any]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def final(self) -> Optional[Dict[str, Any]]:
        return self.steps[-1]["scores"] if self.steps and "scores" in self.steps[-1] else self.fusion

    def rows(self, pipeline: Pipeline) -> Tuple[List[Tuple[str, Dict[str, Any]]], List[Optional[float]]]:
        """(label, scores) rows of the metrics table and each row's mAP gain: the fusion's over the
        best single model, each step's over the row before it."""
        rows = [(f"model {m}", s) for m, s in self.per_model.items()]
        gains: List[Optional[float]] = [None] * len(rows)
        if self.fusion is not None:
            w = ", ".join(f"{m}={pipeline.weights.get(m, 1.0):g}" for m in pipeline.models)
            rows.append((f"fusion {pipeline.fusion} ({w})" if len(pipeline.models) > 1 else "no fusion", self.fusion))
            best = max((s["mAP"] for s in self.per_model.values()), default=None)
            gains.append(None if best is None or len(pipeline.models) < 2 else self.fusion["mAP"] - best)
        for s in self.steps:
            if "scores" in s:
                gains.append(s["scores"]["mAP"] - rows[-1][1]["mAP"])
                rows.append((f"+ {s['label']}", s["scores"]))
        return rows, gains


def make_state(inputs: Inputs, pipeline: Pipeline, only_model: Optional[str] = None, topk: int = TOPK,
               dense_rerank_max: int = DENSE_RERANK_MAX, knn: Optional[str] = None) -> State:
    """The pipeline's fused blocks (or model ``only_model`` alone) plus labels and auxiliary features."""
    if only_model is None:
        blocks = make_blocks(pipeline.models, inputs.feats, pipeline.weights, pipeline.fusion)
    else:
        blocks = make_blocks([only_model], inputs.feats)
    aux = {m: (inputs.feats["query"][m], inputs.feats["gallery"][m]) for m in pipeline.aux_models}
    return State(blocks, inputs.labels, pipeline.distance, aux, topk=topk, dense_rerank_max=dense_rerank_max, knn=knn)


def run_ensemble(inputs: Inputs, pipeline: Pipeline, topk: int = TOPK, evaluate: Optional[bool] = None,
         dense_rerank_max: int = DENSE_RERANK_MAX, knn: Optional[str] = None) -> FuseResult:
    """Runs ``pipeline``; with ground truth (``evaluate`` None) or ``evaluate=True`` scores every stage.

    ``evaluate=False`` skips all scoring (what ``tune`` does between trials). ``knn``: the neighbour
    backend of the feature-level re-ranking (a ``--knn`` spec; None: exact).
    """
    num_gallery = len(inputs.file_labels.g_pids)
    if topk > num_gallery:
        raise PipelineError(f"the gallery has {num_gallery} images, fewer than the {topk} per query a ranking "
                            f"needs (lower --topk)")
    if evaluate is None:
        evaluate = inputs.labels.has_gt
    result = FuseResult(ranking=np.empty((0, topk), np.int64))
    if evaluate:
        for m in pipeline.models:
            single = make_state(inputs, pipeline, m, topk, dense_rerank_max, knn)
            result.per_model[m] = score(inputs.scored(single, topk), inputs.labels, topk)
    state = make_state(inputs, pipeline, topk=topk, dense_rerank_max=dense_rerank_max, knn=knn)
    if evaluate:
        result.fusion = score(inputs.scored(state, topk), inputs.labels, topk)

    def on_step(i: int, step: Step, st: State, seconds: float) -> None:
        row: Dict[str, Any] = {"step": i, "name": step.name, "params": dict(step.params), "label": step.label(),
                               "seconds": round(seconds, 3)}
        if evaluate:
            row["scores"] = score(inputs.scored(st, topk), inputs.labels, topk)
        result.steps.append(row)

    run_pipeline(pipeline, state, on_step)
    result.ranking = np.ascontiguousarray(inputs.written_ranking(state, topk), dtype=np.int64)
    result.scored = inputs.scored(state, topk) if inputs.whole_test_set else result.ranking
    if evaluate and inputs.whole_test_set:
        result.ranking_file = {"ranks": ranking_scope(inputs.dataset),
                               **score(result.ranking, inputs.file_labels, topk)}
    result.notes = dataset_notes(inputs.dataset) + inputs.protocol_notes() + list(state.notes)
    return result


def metrics_json(result: FuseResult, pipeline: Pipeline, inputs: Inputs, topk: int, track2: str) -> Dict[str, Any]:
    """The ``--metrics-out`` document: top-level scores are the final ranking's (what was written);
    ``validation`` is the table `ensemble tune` chose the pipeline by (None for an untuned pipeline);
    ``per_query`` holds each query's AP in that ranking. For a whole-test-set protocol (VehicleID) the scores
    are the means over its draws and ``ranking_file`` holds what the written ranking ranks and its own scores
    (what ``ensemble evaluate`` of it prints)."""
    final = result.final or {"mAP": None, "cmc": None}
    extra = {"ranking_file": result.ranking_file} if result.ranking_file is not None else {}
    return {**final, **extra,
            "per_model": result.per_model,
            "fusion": result.fusion,
            "steps": [{**{k: v for k, v in s.items() if k != "scores"}, **s.get("scores", {})} for s in result.steps],
            "has_ground_truth": inputs.labels.has_gt,
            "protocol": {**inputs.dataset.protocol_json(), "scored_as": inputs.labels.protocol},
            "num_query": len(inputs.file_labels.q_pids), "num_gallery": len(inputs.file_labels.g_pids),
            "topk": topk, "track2": track2, "pipeline": {k: v for k, v in pipeline.to_dict().items() if k != "validation"},
            "validation": pipeline.validation, "notes": result.notes, "per_query": per_query_ap(result, inputs)}


def per_query_ap(result: FuseResult, inputs: Inputs) -> List[Dict[str, Any]]:
    """Each query's name and AP in the final ranking (None without a valid match), worst first: the
    failures to look at (`ensemble visualize` draws them). Empty without ground truth."""
    lab = inputs.file_labels
    if not lab.has_gt:
        return []
    ap = average_precisions(result.ranking, lab.q_pids, lab.g_pids, lab.q_camids, lab.g_camids)
    rows = [{"query": r.name, "ap": None if np.isnan(a) else float(a)} for r, a in zip(inputs.dataset.query, ap)]
    return sorted(rows, key=lambda row: (row["ap"] is None, row["ap"] or 0.0))
