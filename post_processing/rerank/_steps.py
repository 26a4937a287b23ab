"""Python steps shared by both entry points: argument checks, list sizes, weights, query
expansion with the inverted index, and the final blend constants."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from post_processing.errors import ReidError

from ..progress import show_progress
from ._jaccard_kernels import _invert, _normalise_rows, _query_expand

_WEIGHT_DTYPES = (np.float32, np.float16)


class RerankError(ReidError, ValueError):
    """A re-ranking input or parameter that cannot be used; the message names it."""


def _check_params(k1, k2, lambda_value, weight_dtype):
    """Validate the re-ranking parameters; returns ``weight_dtype`` as a numpy dtype."""
    for name, k in (("k1", k1), ("k2", k2)):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise RerankError(f"{name} must be an integer >= 1, got {k!r}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise RerankError(f"lambda_value must be in [0, 1], got {lambda_value!r}")
    dt = np.dtype(weight_dtype)
    if dt not in [np.dtype(d) for d in _WEIGHT_DTYPES]:
        raise RerankError(f"weight_dtype must be float32 or float16, got {dt}")
    return dt


class Sizes(NamedTuple):
    """How many neighbours each step reads, each clipped to the number of items."""

    table: int         # neighbours kept per item: max(k1 + 1, k2)
    k1_forward: int    # the first k1 + 1 neighbours, searched for k1-reciprocal ones
    half_forward: int  # the first round(k1 / 2) + 1 neighbours, for the expansion candidates
    qe_rows: int       # the first k2 neighbours, averaged by local query expansion


def _sizes(n, k1, k2) -> Sizes:
    """The :class:`Sizes` of ``n`` items re-ranked with ``k1`` and ``k2``."""
    return Sizes(min(n, max(k1 + 1, k2)), min(n, k1 + 1), min(n, int(np.around(k1 / 2.0)) + 1), min(n, k2))


def _weights(indptr, b_values, weight_dtype):
    """Normalised Gaussian weights ``exp(-B) / sum`` per CSR row (numpy's exp, numpy's sum order)."""
    w = _normalise_rows(indptr, np.exp(-b_values))
    return w.astype(weight_dtype) if weight_dtype != np.float32 else w


def _kernel_view(data):
    """Weights as the kernels read them: float16 is passed as its uint16 bit pattern."""
    return data.view(np.uint16) if data.dtype == np.float16 else data


def _expand_and_invert(indptr, indices, data, neighbours, qe_rows, k2, q, n, weight_dtype):
    """Local query expansion (unless ``k2 == 1``) over each item's first ``qe_rows`` neighbours,
    then the inverted index over the gallery rows."""
    if k2 != 1:
        indptr, indices, data = _query_expand(indptr, indices, _kernel_view(data), neighbours, qe_rows)
        if weight_dtype != np.float32:
            data = data.astype(weight_dtype)
    data = _kernel_view(data)
    colptr, rows, vals = _invert(indptr, indices, data, q, n)
    return indptr, indices, data, colptr, rows, vals


def _blend_constants(lambda_value):
    """float32 ``1-λ`` and ``λ``, as numpy rounds a Python float multiplying a float32 array."""
    return np.float32(1 - float(lambda_value)), np.float32(float(lambda_value))


def _show(progress, work, threshold):
    """Whether to show the progress bar: as asked, else only when ``work`` reaches ``threshold``; never
    when bars are turned off or stderr is not a terminal."""
    return show_progress(bool(progress) if progress is not None else work >= threshold)


def _check_max(col_max, q, where):
    """Refuse an item whose distances are all zero (its normaliser would divide by zero)."""
    zero = np.flatnonzero(~(col_max > 0))
    if zero.size:
        i = int(zero[0])
        item = f"query {i}" if i < q else f"gallery item {i - q}"
        raise RerankError(f"{where}: every distance from {item} is zero; re-ranking divides by the "
                         "largest one (are all features identical?)")
