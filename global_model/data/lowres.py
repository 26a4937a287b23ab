"""Low-resolution images: antialiased bicubic down-up degradation, for training, testing and ``make-lr``.

One definition everywhere: an image degraded by scale ``s`` is the image *as stored* shrunk to
``round(H/s) x round(W/s)`` with antialiased bicubic resampling (the kernel widened by ``s``, as
PIL's ``resize(BICUBIC)``), then enlarged back to exactly ``H x W`` with bicubic. So
``TEST.LR_SCALE 4`` scores what ``make-lr --scale 4`` files would give, and the synthetic
benchmark's ``image_query_x4`` views are the same operation. SNU_ReID instead resized the
normalised network input with ``F.interpolate`` (no antialiasing: aliasing, and a 256-pixel side
drifts to 255 at scale 3).

- :func:`degrade` / :func:`resize_bicubic`: the operation on an RGB (or BGR) uint8 array;
- :class:`LowResDegradation`: ``INPUT.LR_SCALES`` / ``INPUT.LR_PROB``, one scale drawn per training image;
- :func:`eval_lr_scale`: ``TEST.LR_SCALE`` for a split under ``TEST.LR_APPLY`` (query | gallery | both);
- :func:`make_lr_folder`: the library behind ``python -m global_model make-lr``.
"""
from __future__ import annotations

import functools
import os
import shutil
import time
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from post_processing.errors import ReidError, ReidUsageError
from post_processing.fileio import IMAGE_EXTENSIONS, atomic_write, iter_images

__all__ = ["LR_APPLY", "LowResDegradation", "LowResError", "LowResUsageError", "degrade", "encode_image",
           "eval_lr_scale", "low_res_size", "make_lr_folder", "resize_bicubic", "train_degradation"]

LR_APPLY = ("query", "gallery", "both")
_A = -0.5  # the bicubic kernel's a (PIL, and torch's antialiased bicubic)


class LowResUsageError(ReidUsageError, ValueError):
    """A scale, folder or LR config key that cannot be used."""


class LowResError(ReidError):
    """An image that cannot be read or written while making low-resolution copies."""


def _cubic(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1, ((_A + 2) * x - (_A + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * _A, 0.0))


@functools.lru_cache(maxsize=64)
def _weights(n_in: int, n_out: int) -> np.ndarray:
    """n_out × n_in resampling matrix (float32): bicubic, its support widened by the shrink factor
    (antialiasing); cached, since a dataset has few distinct sizes."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    taps = np.arange(n_in) + 0.5
    w = _cubic((taps[None, :] - centres[:, None]) / support)
    w = (w / w.sum(1, keepdims=True)).astype(np.float32)
    w.flags.writeable = False
    return w


def resize_bicubic(img: np.ndarray, size_hw: Tuple[int, int]) -> np.ndarray:
    """``img`` (H×W×C or H×W uint8) resized to ``size_hw`` with antialiased bicubic, rounded and clipped."""
    h, w = int(size_hw[0]), int(size_hw[1])
    if h < 1 or w < 1:
        raise LowResUsageError(f"cannot resize to {h}x{w}")
    rows, cols = img.shape[:2]
    # einsum, not BLAS: single-threaded (a BLAS thread pool under load is 30x slower here) and exact
    # whatever the thread count
    x = np.einsum("ij,jk->ik", _weights(rows, h), img.reshape(rows, -1).astype(np.float32))  # h × (cols·C)
    x = x.reshape(h, cols, -1).transpose(1, 0, 2).reshape(cols, -1)  # cols × (h·C)
    x = np.einsum("ij,jk->ik", _weights(cols, w), x).reshape(w, h, -1).transpose(1, 0, 2)  # h × w × C
    return np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape((h, w) + img.shape[2:])


def low_res_size(h: int, w: int, scale: float) -> Tuple[int, int]:
    """The shrunk size of an H×W image at ``scale`` (each side at least one pixel)."""
    return max(1, int(round(h / scale))), max(1, int(round(w / scale)))


def degrade(img: np.ndarray, scale: float, keep_size: bool = True) -> np.ndarray:
    """``img`` shrunk by ``scale`` and, with ``keep_size``, enlarged back to its exact size (see the module doc)."""
    if scale <= 1:
        return img
    h, w = img.shape[:2]
    small = resize_bicubic(img, low_res_size(h, w, scale))
    return resize_bicubic(small, (h, w)) if keep_size else small


def _check_scales(scales: Sequence[float], key: str) -> Tuple[float, ...]:
    out = tuple(float(s) for s in scales)
    if not out or any(not np.isfinite(s) or s < 1 for s in out):
        raise LowResUsageError(f"{key} must be scales >= 1 (1 = full resolution), got {list(scales)}")
    return out


class LowResDegradation:
    """With probability ``prob``, :func:`degrade` by one of ``scales`` drawn uniformly (per image)."""

    def __init__(self, scales: Sequence[float], prob: float):
        self.scales = _check_scales(scales, "INPUT.LR_SCALES")
        if not 0 <= prob <= 1:
            raise LowResUsageError(f"INPUT.LR_PROB must lie in [0, 1], got {prob}")
        self.prob = float(prob)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.prob:
            return img
        return degrade(img, self.scales[int(rng.integers(len(self.scales)))])


def train_degradation(cfg) -> Optional[LowResDegradation]:
    """``INPUT.LR_SCALES`` / ``INPUT.LR_PROB`` as a degradation, or None when off (``LR_PROB`` 0): then
    no random number is drawn and augmentation is exactly what it was without these keys."""
    if cfg.INPUT.LR_PROB <= 0:
        return None
    return LowResDegradation(cfg.INPUT.LR_SCALES, cfg.INPUT.LR_PROB)


def eval_lr_scale(cfg, split: Optional[str]) -> float:
    """The scale the test images of ``split`` are degraded by: ``TEST.LR_SCALE`` when ``TEST.LR_APPLY``
    covers it (``split`` None, e.g. a folder search, is covered by ``both`` only), else 1."""
    scale, apply = float(cfg.TEST.LR_SCALE), cfg.TEST.LR_APPLY
    _check_scales([scale], "TEST.LR_SCALE")
    if apply not in LR_APPLY:
        raise LowResUsageError(f"TEST.LR_APPLY must be one of {', '.join(LR_APPLY)}, got {apply!r}")
    return scale if apply == "both" or apply == split else 1.0


# ----------------------------------------------------------------------------- make-lr
def encode_image(path: str, bgr: np.ndarray) -> bytes:
    """``bgr`` encoded in the format of ``path``'s extension (JPEG at quality 95)."""
    ext = os.path.splitext(path)[1].lower()
    ok, buf = cv2.imencode(ext, bgr, [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else [])
    if not ok:
        raise LowResError(f"{path}: cannot encode the image as {ext}")
    return buf.tobytes()


def make_lr_folder(src: str, out: str, scale: float, keep_small: bool = False) -> Dict[str, object]:
    """Write ``out/<rel>`` for every image ``src/<rel>`` (sub-folders kept, same file names): degraded
    by ``scale`` at its original size, or left at the small size with ``keep_small``. Other files
    (label lists ...) are copied as they are. ``out`` must not be inside ``src``."""
    if not os.path.isdir(src):
        raise LowResUsageError(f"--src {src!r} is not a directory")
    scale = _check_scales([scale], "--scale")[0]
    src_abs, out_abs = os.path.realpath(src), os.path.realpath(out)
    if os.path.commonpath([src_abs, out_abs]) == src_abs:
        raise LowResUsageError(f"--out {out!r} must not be inside --src {src!r} "
                               "(its images would be read back as sources)")
    rels = list(iter_images(src))
    if not rels:
        raise LowResError(f"--src {src!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    start = time.time()
    for rel in rels:
        path = os.path.join(src, rel)
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise LowResError(f"{path}: cannot read image")
        target = os.path.join(out, rel)
        with atomic_write(target, "wb") as f:
            f.write(encode_image(target, degrade(image, scale, keep_size=not keep_small)))
    copied = 0
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), src)
            if name.startswith(".") or name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
            shutil.copyfile(os.path.join(src, rel), os.path.join(out, rel))
            copied += 1
    return {"images": len(rels), "copied": copied, "scale": scale, "keep_small": keep_small, "out": out,
            "seconds": round(time.time() - start, 2)}
