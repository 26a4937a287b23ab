"""Low-resolution query views of the synthetic benchmark: ``image_query_x2/`` and ``image_query_x4/``
beside ``image_query/``, the same file names, each image degraded as ``make-lr --scale S`` does
(:func:`global_model.data.lowres.degrade`: antialiased bicubic down, bicubic back up to the exact size).

The degradation is deterministic, so the views draw no random number: every existing output stays
byte-identical. :func:`query_view_root` makes a dataset folder whose queries are one of these views,
for scoring low-resolution queries against the normal gallery with any AIC20 tool.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import cv2

from post_processing.errors import ReidUsageError

from ..lowres import degrade, encode_image

__all__ = ["LOWRES_SCALES", "LOWRES_VIEWS", "query_view_root", "write_lowres_views"]

LOWRES_SCALES = (2, 4)
LOWRES_VIEWS = tuple(f"image_query_x{s}" for s in LOWRES_SCALES)


def write_lowres_views(root: str, names: Sequence[str], scales: Sequence[int] = LOWRES_SCALES,
                       out_root: Optional[str] = None) -> None:
    """``out_root/image_query_x<S>/<name>`` (``out_root`` defaults to ``root``) for every
    ``root/image_query/<name>`` and scale S."""
    for scale in scales:
        folder = os.path.join(out_root or root, f"image_query_x{scale}")
        os.makedirs(folder, exist_ok=True)
        for name in names:
            image = cv2.imread(os.path.join(root, "image_query", name), cv2.IMREAD_COLOR)
            with open(os.path.join(folder, name), "wb") as f:
                f.write(encode_image(name, degrade(image, scale)))


def query_view_root(root: str, scale: int, out: str, views: Optional[str] = None) -> str:
    """``out``: a folder of symbolic links to every entry of the benchmark at ``root``, except
    ``image_query``, which links to ``image_query_x<scale>`` (in ``views``, default ``root``: a
    benchmark generated before the views existed gets them with :func:`write_lowres_views`'s
    ``out_root``). Returns ``out``."""
    view = os.path.join(os.path.abspath(views or root), f"image_query_x{scale}")
    if not os.path.isdir(view):
        raise ReidUsageError(f"{root}: no low-resolution query view image_query_x{scale} (written by synth)")
    os.makedirs(out, exist_ok=True)
    for entry in os.listdir(root):
        if entry.startswith(".") or entry in LOWRES_VIEWS:
            continue
        target = view if entry == "image_query" else os.path.join(os.path.abspath(root), entry)
        link = os.path.join(out, entry)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(target, link)
    return out
