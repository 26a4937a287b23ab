"""``rerank``: k-reciprocal re-ranking, dense or from features, camera-aware after a camera penalty.

Re-ranking takes the full query×gallery, query×query and gallery×gallery distance matrices
(``re_ranking``; the query×gallery one includes any camera terms) while query + gallery has at most
``dense_rerank_max`` images (default 8000: the gallery×gallery matrix alone is 4·G² bytes). Above
that it switches to ``re_ranking_features`` on the (concatenated) fused features, which keeps only
the top-K per query, its neighbour lists found with the state's ``knn`` backend (``--knn``; exact by
default); camera terms applied earlier are then added to those top-K distances before re-sorting.
After a ``camera_penalty`` step both paths also penalise same-camera pairs among the queries and among
the gallery (``camera_aware``), so k-reciprocal neighbourhoods are built across cameras; the
feature-level path applies the penalty inside the re-ranking, the dense path to its three matrices,
and the two agree.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from post_processing.camera import same_camera_penalty
from post_processing.rerank import re_ranking, re_ranking_features

from ..fusion import block_distance, concat_equivalent
from ..pipeline import DISTANCES, Param, State, register_step


@register_step("rerank", DISTANCES, 30, "k-reciprocal re-ranking (Zhong et al. 2017)",
               k1=Param(int, 20, "k-reciprocal neighbours", minimum=1, grid=(10, 20, 30), aliases=("--k1",)),
               k2=Param(int, 6, "neighbours for local query expansion", minimum=1, grid=(3, 6, 10), aliases=("--k2",)),
               **{"lambda": Param(float, 0.3, "weight of the original distance", minimum=0, maximum=1,
                                  grid=(0.1, 0.3, 0.5), aliases=("--lambda",))},
               camera_aware=Param(bool, True, "after a camera_penalty step, penalise same-camera pairs in the "
                                              "query×query and gallery×gallery distances too"))
def _rerank(state: State, p: Dict[str, Any]) -> None:
    if state.num_query + state.num_gallery <= state.dense_rerank_max:
        qg = state.distances()
        qq = block_distance(state.blocks, "query", "query", state.metric)
        gg = block_distance(state.blocks, "gallery", "gallery", state.metric)
        if p["camera_aware"] and state.same_camera_penalty:
            # Camera-aware neighbourhoods: otherwise an image's k-reciprocal set fills up with other
            # vehicles seen by its own camera (shared background and colour cast), and re-ranking
            # pulls exactly the same-camera look-alikes the penalty pushed away back up.
            lab = state.labels
            qq = _penalise_same_camera(qq, lab.q_camids, state.same_camera_penalty)
            gg = _penalise_same_camera(gg, lab.g_camids, state.same_camera_penalty)
        state.dist = np.asarray(re_ranking(qg, qq, gg, k1=p["k1"], k2=p["k2"], lambda_value=p["lambda"]),
                                dtype=np.float32)
        return
    qf, gf = concat_equivalent(state.blocks, "query"), concat_equivalent(state.blocks, "gallery")
    depth = min(state.topk, state.num_gallery)
    lab = state.labels
    penalty = state.same_camera_penalty if p["camera_aware"] else 0.0
    idx, dist = re_ranking_features(qf, gf, p["k1"], p["k2"], p["lambda"], topk=depth, metric=state.metric,
                                    query_cams=lab.q_camids, gallery_cams=lab.g_camids, camera_penalty=penalty,
                                    knn=state.knn)
    idx, dist = np.asarray(idx), np.asarray(dist, dtype=np.float32)
    if state.dist is not None:
        extra = np.take_along_axis(state.added_distances(), idx, axis=1)
        if penalty:  # the penalty is inside the re-ranked distances already
            qc, gc = lab.q_camids[:, None], lab.g_camids[idx]
            extra -= np.float32(penalty) * ((qc == gc) & (qc >= 0) & (gc >= 0))
        if np.any(extra):
            order = np.argsort(dist + extra, axis=1, kind="stable")
            idx = np.take_along_axis(idx, order, axis=1)
    state.notes.append(f"rerank: {state.num_query}+{state.num_gallery} images > {state.dense_rerank_max}, "
                       f"used top-{depth} re-ranking from features (neighbours: --knn {state.knn or 'exact'}"
                       + (", camera-aware)" if penalty else ")"))
    state.dist = None
    state.ranking = idx


def _penalise_same_camera(dist: np.ndarray, camids: np.ndarray, penalty: float) -> np.ndarray:
    """``dist`` (square, one split against itself) plus ``penalty`` on same-camera pairs, the diagonal kept."""
    out = same_camera_penalty(dist, camids, camids, penalty)
    np.fill_diagonal(out, np.diagonal(dist))
    return out
