"""Image reading for the trainer, extractor, synthesiser and ensemble: OpenCV in, RGB uint8 out.

``cv2.imread`` returns ``None`` on unreadable files instead of raising; this module turns that
into an ``ImageReadError`` naming the file, and checks whole splits before a long run starts.
"""
from __future__ import annotations

import os
import re
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from .records import ImageRecord
from post_processing.errors import ReidError


class ImageReadError(ReidError, OSError):
    """An image file that is missing or that OpenCV cannot decode; the message names the file."""


def _load_bgr(path: str) -> np.ndarray:
    if not os.path.isfile(path):  # checked first: imread only logs a warning for missing files
        raise ImageReadError(f"cannot read image {path}: no such file")
    try:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
    except cv2.error as e:
        raise ImageReadError(f"cannot read image {path}: {e}") from None
    if image is None or image.size == 0:
        raise ImageReadError(f"cannot read image {path}: corrupt or not an image")
    return image


def read_image(path: str) -> np.ndarray:
    """``path`` as an H×W×3 uint8 RGB array (grey images are expanded, alpha is dropped)."""
    return cv2.cvtColor(_load_bgr(path), cv2.COLOR_BGR2RGB)


def check_images(records: Sequence[ImageRecord], skip_bad: bool = False) -> Tuple[List[ImageRecord], List[str]]:
    """Decode every image (and ``clear_path`` twin) of ``records``.

    Returns ``(good_records, bad_paths)``. Without ``skip_bad`` the first unreadable file raises
    ``ImageReadError``; with it, records with an unreadable image are left out and their paths
    reported. Decodes exactly as ``read_image`` does, so a checked split reads without surprises.
    """
    good, bad = [], []
    for record in records:
        for path in (record.path, record.clear_path):
            if path is None:
                continue
            try:
                _load_bgr(path)
            except ImageReadError:
                if not skip_bad:
                    raise
                bad.append(path)
                break
        else:
            good.append(record)
    return good, bad


def clean_read_error(exc: ImageReadError) -> ImageReadError:
    """A DataLoader worker re-raises with the whole remote traceback; keep the line naming the file."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    last = re.sub(r"^[\w.]*ImageReadError:\s*", "", lines[-1]) if lines else str(exc)
    return ImageReadError(last)
