"""Pictures of a feature space (t-SNE coloured by identity, positive/negative distance histograms, ROC)
and of rankings (CMC curves, one per model, fusion or step).

Inputs are plain arrays (features and identities per image), so any dataset or feature source
works. Pairs are query×gallery: a pair is positive when both images have the same identity and
negative otherwise; same-identity pairs from the same camera are left out when cameras are given
(the evaluation protocol ignores them too). Every figure is drawn with matplotlib (Agg backend) and
written atomically as PNG; t-SNE and the ROC come from scikit-learn.
"""
from __future__ import annotations

import io
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from post_processing.distance import pairwise_distance
from post_processing.errors import ReidError
from post_processing.fileio import atomic_write


class PlotError(ReidError, ValueError):
    """Too few identities or pairs to draw a picture from."""


def _figure(size=(6.4, 4.8)):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt, *plt.subplots(figsize=size, dpi=100)


def _save(plt, fig, out: str) -> None:
    try:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    with atomic_write(out, "wb") as f:
        f.write(buf.getvalue())


def pick_identities(ids: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` identities with the most images (ties: smaller id first), for a readable t-SNE."""
    values, counts = np.unique(ids, return_counts=True)
    order = np.lexsort((values, -counts))
    return values[order[:count]]


def tsne_embedding(feats: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of ``feats`` (N×D), PCA-initialised, perplexity clipped to what N allows."""
    from sklearn.manifold import TSNE

    if len(feats) < 3:
        raise PlotError(f"t-SNE needs at least 3 images, got {len(feats)}")
    perplexity = float(min(30.0, (len(feats) - 1) / 3.0))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        np.asarray(feats, np.float64))


def tsne_plot(out: str, feats: np.ndarray, ids: np.ndarray, is_query: Optional[np.ndarray] = None,
              max_ids: int = 20, seed: int = 0, title: str = "t-SNE") -> Tuple[int, int]:
    """PNG at ``out``: t-SNE of the images of the ``max_ids`` largest identities, one colour per identity
    (queries as crosses, gallery as dots when ``is_query`` is given). Returns (images, identities) drawn."""
    ids = np.asarray(ids)
    chosen = pick_identities(ids, max_ids)
    if len(chosen) < 2:
        raise PlotError(f"t-SNE coloured by identity needs at least 2 identities, got {len(chosen)}")
    keep = np.flatnonzero(np.isin(ids, chosen))
    xy = tsne_embedding(np.asarray(feats)[keep], seed)
    plt, fig, ax = _figure((6.4, 6.0))
    cmap = plt.get_cmap("tab20" if len(chosen) <= 20 else "hsv", len(chosen))
    colour = {v: cmap(i) for i, v in enumerate(chosen)}
    colours = [colour[v] for v in ids[keep]]
    query = np.zeros(len(keep), bool) if is_query is None else np.asarray(is_query)[keep]
    ax.scatter(xy[~query, 0], xy[~query, 1], c=[c for c, q in zip(colours, query) if not q], s=14,
               label="gallery" if is_query is not None else None)
    if query.any():
        ax.scatter(xy[query, 0], xy[query, 1], c=[c for c, q in zip(colours, query) if q], s=40, marker="x",
                   label="query")
        ax.legend(fontsize=8, loc="best")
    ax.set_title(f"{title} ({len(chosen)} identities, {len(keep)} images)")
    ax.set_xticks([])
    ax.set_yticks([])
    _save(plt, fig, out)
    return len(keep), len(chosen)


def pair_distances(qf: np.ndarray, gf: np.ndarray, q_ids: np.ndarray, g_ids: np.ndarray,
                   q_cams: Optional[np.ndarray] = None, g_cams: Optional[np.ndarray] = None,
                   metric: str = "euclidean") -> Tuple[np.ndarray, np.ndarray]:
    """``(positive, negative)`` query×gallery distances (1-D float32 arrays), same-camera positives left out."""
    dist = pairwise_distance(qf, gf, metric)
    same = np.asarray(q_ids)[:, None] == np.asarray(g_ids)[None, :]
    junk = same & (np.asarray(q_cams)[:, None] == np.asarray(g_cams)[None, :]) if q_cams is not None else False
    pos, neg = dist[same & ~junk], dist[~same]
    if not len(pos) or not len(neg):
        raise PlotError(f"{len(pos)} positive and {len(neg)} negative query-gallery pairs: need both "
                        f"(query identities that are in the gallery, and others)")
    return pos, neg


def histogram_plot(out: str, pos: np.ndarray, neg: np.ndarray, metric: str = "euclidean",
                   title: str = "query-gallery distances", bins: int = 60) -> None:
    """PNG at ``out``: the distance distributions of positive and negative pairs, each normalised to area 1."""
    plt, fig, ax = _figure()
    edges = np.linspace(min(pos.min(), neg.min()), max(pos.max(), neg.max()), bins + 1)
    ax.hist(neg, bins=edges, density=True, alpha=0.55, color="tab:red", label=f"different identity ({len(neg)} pairs)")
    ax.hist(pos, bins=edges, density=True, alpha=0.55, color="tab:green", label=f"same identity ({len(pos)} pairs)")
    ax.set_xlabel(f"{metric} distance")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(plt, fig, out)


def roc_plot(out: str, pos: np.ndarray, neg: np.ndarray, title: str = "ROC (query-gallery pairs)") -> float:
    """PNG at ``out``: true-positive against false-positive rate over distance thresholds (log-scaled
    false-positive axis, where ReID operating points are). Returns the area under the curve."""
    from sklearn.metrics import auc, roc_curve

    labels = np.concatenate([np.ones(len(pos), np.int8), np.zeros(len(neg), np.int8)])
    fpr, tpr, _ = roc_curve(labels, -np.concatenate([pos, neg]).astype(np.float64))
    area = float(auc(fpr, tpr))
    plt, fig, ax = _figure()
    floor = 1.0 / len(neg)
    ax.plot(np.maximum(fpr, floor), tpr, linewidth=1.6, label=f"AUC {area:.4f}")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(plt, fig, out)
    return area


def stack_sides(qf: np.ndarray, gf: np.ndarray, q_ids: Sequence,
                g_ids: Sequence) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Query and gallery stacked for one t-SNE: ``(feats, ids, is_query)``."""
    feats = np.concatenate([qf, gf])
    ids = np.concatenate([np.asarray(q_ids), np.asarray(g_ids)])
    return feats, ids, np.arange(len(feats)) < len(qf)


def cmc_plot(out: str, curves: Mapping[str, Sequence[float]], title: str = "CMC") -> None:
    """PNG at ``out`` with one CMC curve (fractions per rank, rank 1 first) per label."""
    plt, fig, ax = _figure((6.4, 4.4))
    for label, cmc in curves.items():
        cmc = np.asarray(cmc, dtype=float)
        ax.plot(np.arange(1, len(cmc) + 1), 100 * cmc, label=label, linewidth=1.6)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(plt, fig, out)
