"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), exact and numba-compiled, at any scale.

Two entry points share every kernel:

* :func:`re_ranking` takes the three distance matrices of the widely used implementation
  (fast-reid, torchreid, the AICity repos) and returns the same q×g matrix, but never builds the
  (q+g)² float32 matrices: only the first ``max(k1+1, k2)`` neighbours of each item are kept, the
  k-reciprocal weights ``V`` are sparse rows and the Jaccard term is computed through an inverted
  index over the gallery only.
* :func:`re_ranking_features` starts from features, computes distances block pair by block pair
  (each pair of blocks once, the matrix being symmetric) and returns only the top-``topk`` gallery
  items per query; a gallery item that shares no weight with a query has Jaccard distance 1, so
  its final distance is ``(1-λ) + λ·d`` and never needs the Jaccard machinery.

Semantics (what "the widely used implementation" does), reproduced operation for operation in
float32 so results agree bit for bit with a numpy transcription: distances are squared, each row
``i`` of the stacked ``[[q_q, q_g], [q_gᵀ, g_g]]`` matrix becomes ``column_i / max(column_i)``,
neighbours are ranked by that value, weights are ``exp(-d)`` over the k-reciprocal set expanded
with the 2/3 rule over ``round(k1/2)+1`` neighbours, normalised with numpy's pairwise sum,
averaged over the first ``k2`` neighbours, and the final distance is
``jaccard·(1-λ) + d·λ``. One deliberate difference: ties in the neighbour ranking go to the lower
index (a stable sort), where the reference's quicksort argsort leaves their order unspecified.

Modules: ``dense`` (:func:`re_ranking`), ``streaming`` (:func:`re_ranking_features`), ``reference``
(:func:`reference_re_ranking`, the readable numpy transcription both are checked against), and
behind them ``_neighbour_kernels`` / ``_jaccard_kernels`` (numba), ``_steps`` (shared by both
entry points) and ``_blocks`` (the streamed distance matrix).
"""
from ._steps import RerankError
from .dense import re_ranking
from .reference import reference_re_ranking
from .streaming import re_ranking_features

__all__ = ["RerankError", "re_ranking", "re_ranking_features", "reference_re_ranking"]
