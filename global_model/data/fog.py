"""Synthetic fog: the atmospheric scattering model, a ground-plane depth prior and folder fogging.

``I = J·t + A·(1−t)`` with transmission ``t = exp(−β·d)``, ``d`` a depth map in [0, 1], β ~ U(1, 5)
and airlight A ~ U(0.4, 1.0) per image (the recipe of the FVRID synthetic set). The synthetic
benchmark (``data/synth``) and ``python -m global_model fog`` (``commands/fog.py``, via ``fog_folder``)
both use these functions, so users can turn their own clear dataset into FVRID-style clear/foggy
pairs. numpy + OpenCV only (no torch).
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import time
import zlib
from typing import Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from post_processing.errors import ReidError, ReidUsageError
from post_processing.fileio import IMAGE_EXTENSIONS, atomic_write, iter_images

BETA_RANGE = (1.0, 5.0)
AIRLIGHT_RANGE = (0.4, 1.0)
DEPTH_EXTENSIONS = (".npy", ".png")

Airlight = Union[float, Sequence[float]]


class FogError(ReidError, ValueError):
    """Bad fog input: names the file or argument and what was expected."""


class FogUsageError(FogError, ReidUsageError):
    """A ``fog_folder`` setting that cannot work (a folder that is not one, a bad seed or split name)."""


def add_fog(image: np.ndarray, depth: np.ndarray, beta: Union[float, np.ndarray], A: Airlight) -> np.ndarray:
    """Fog a uint8 image: ``I = J·t + A·(1−t)``, ``t = exp(−β·depth)``, J and A on a [0, 1] scale.

    ``image`` is HxW or HxWxC uint8; ``depth`` an HxW map in [0, 1] (larger = farther);
    ``beta`` a scattering coefficient (scalar, or an HxW map for uneven fog); ``A`` the airlight,
    a scalar grey level or one value per channel. Returns a uint8 image of the same shape.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise FogError(f"add_fog: image must be a uint8 HxW or HxWxC array, got {image.dtype} {image.shape}")
    depth = np.asarray(depth, dtype=np.float32)
    if depth.shape != image.shape[:2]:
        raise FogError(f"add_fog: depth shape {depth.shape} does not match image size {image.shape[:2]}")
    if not np.isfinite(depth).all() or depth.min() < 0.0 or depth.max() > 1.0:
        raise FogError("add_fog: depth must be finite and normalised to [0, 1]")
    beta = np.asarray(beta, dtype=np.float32)
    if beta.ndim not in (0, 2) or (beta.ndim == 2 and beta.shape != depth.shape) or (beta < 0).any():
        raise FogError(f"add_fog: beta must be a non-negative scalar or an HxW map, got shape {beta.shape}")
    airlight = np.asarray(A, dtype=np.float32).reshape(-1)
    channels = 1 if image.ndim == 2 else image.shape[2]
    if airlight.size not in (1, channels) or (airlight < 0).any() or (airlight > 1).any():
        raise FogError(f"add_fog: A must be one value or {channels} values in [0, 1], got {A!r}")
    t = np.exp(-beta * depth)
    if image.ndim == 3:
        t = t[..., None]
        airlight = airlight.reshape(1, 1, -1)
    else:
        airlight = airlight.reshape(())
    foggy = image.astype(np.float32) * t + (255.0 * airlight) * (1.0 - t)
    return np.clip(foggy + 0.5, 0, 255).astype(np.uint8)


def ground_plane_depth(h: int, w: int, horizon: float = -0.5, near: float = 0.2, far: float = 1.0,
                       max_distance: float = 4.0) -> np.ndarray:
    """Depth prior of a camera looking down a flat road, normalised to [near, far] (float32 HxW).

    ``horizon`` is the horizon row as a fraction of the height (0 = top row; negative = above the
    image, as for a crop from a downward-looking camera). On the ground, distance grows as
    ``1/(y − horizon)``; it is measured relative to the bottom row and saturates at ``far`` once it
    reaches ``max_distance`` times the bottom-row distance (and at and above the horizon).
    """
    if h <= 0 or w <= 0:
        raise FogError(f"ground_plane_depth: size must be positive, got {h}x{w}")
    if not 0.0 <= near <= far <= 1.0:
        raise FogError(f"ground_plane_depth: need 0 <= near <= far <= 1, got near={near} far={far}")
    if horizon >= 1.0 or max_distance <= 1.0:
        raise FogError(f"ground_plane_depth: need horizon < 1 and max_distance > 1, got {horizon}, {max_distance}")
    y = (np.arange(h, dtype=np.float64) + 0.5) / h
    below = y > horizon
    rel = np.full(h, np.inf)
    rel[below] = (1.0 - horizon) / (y[below] - horizon)
    frac = np.clip((rel - 1.0) / (max_distance - 1.0), 0.0, 1.0)
    column = (near + (far - near) * frac).astype(np.float32)
    return np.repeat(column[:, None], w, axis=1)


def sample_fog(rng: np.random.Generator) -> Tuple[float, float]:
    """Draw (β, A) from the FVRID ranges: β ~ U(1, 5), A ~ U(0.4, 1.0)."""
    return float(rng.uniform(*BETA_RANGE)), float(rng.uniform(*AIRLIGHT_RANGE))


def load_depth(path: str, shape: Tuple[int, int], inverse: bool = False) -> np.ndarray:
    """Read a depth map (8/16-bit PNG or .npy), resize it to ``shape`` (h, w), min-max normalise to [0, 1].

    ``inverse`` treats the map as disparity / inverse depth (larger = nearer, as MiDaS-style
    estimators write) and flips it so that larger means farther.
    """
    if path.lower().endswith(".npy"):
        try:
            depth = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise FogError(f"{path}: cannot read depth map as .npy ({exc})") from exc
    else:
        depth = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if depth is None:
            raise FogError(f"{path}: cannot read depth map (expected an 8- or 16-bit PNG)")
        if depth.dtype not in (np.uint8, np.uint16):
            raise FogError(f"{path}: depth PNG must be 8- or 16-bit, got {depth.dtype}")
        if depth.ndim == 3:
            depth = depth[..., 0]
    depth = np.squeeze(np.asarray(depth))
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
        raise FogError(f"{path}: depth map must be a single-channel HxW array, got {depth.dtype} {depth.shape}")
    depth = depth.astype(np.float32)
    if not np.isfinite(depth).all():
        raise FogError(f"{path}: depth map contains NaN or infinite values")
    lo, hi = float(depth.min()), float(depth.max())
    if hi <= lo:
        raise FogError(f"{path}: depth map is constant ({lo}); cannot normalise it to [0, 1]")
    depth = (depth - lo) / (hi - lo)
    if inverse:
        depth = 1.0 - depth
    if depth.shape != tuple(shape):
        depth = cv2.resize(depth, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(depth, 0.0, 1.0)


def _find_depth(depth_dir: str, rel: str) -> str:
    stem = os.path.splitext(rel)[0]
    candidates = [os.path.join(depth_dir, stem + ext) for ext in DEPTH_EXTENSIONS]
    for cand in candidates:
        if os.path.isfile(cand):
            return cand
    raise FogError(f"no depth map for image {rel!r}: looked for {', '.join(candidates)}")


def _image_rng(seed: int, rel: str) -> np.random.Generator:
    """Per-image generator keyed by (seed, relative path): results do not depend on order or workers."""
    return np.random.default_rng([seed, zlib.crc32(rel.replace(os.sep, "/").encode("utf-8"))])


def _fog_one(job: Tuple[str, str, str, Optional[str], int, bool, str]) -> Tuple[str, float, float]:
    """Fog one image (``rel`` under ``src``) and write its clear/foggy twins; returns (rel, β, A)."""
    src, out, split, depth_dir, seed, inverse, rel = job
    path = os.path.join(src, rel)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FogError(f"{path}: cannot read image")
    h, w = image.shape[:2]
    if depth_dir:
        depth = load_depth(_find_depth(depth_dir, rel), (h, w), inverse=inverse)
    else:
        depth = ground_plane_depth(h, w)
    beta, airlight = sample_fog(_image_rng(seed, rel))
    foggy = add_fog(image, depth, beta, airlight)
    ext = os.path.splitext(rel)[1].lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, foggy, params)
    if not ok:
        raise FogError(f"{path}: cannot encode the foggy image as {ext}")
    clear_path = os.path.join(out, f"{split}_clear", rel)
    os.makedirs(os.path.dirname(clear_path), exist_ok=True)
    with atomic_write(clear_path, "wb") as f, open(path, "rb") as original:
        shutil.copyfileobj(original, f)
    with atomic_write(os.path.join(out, f"{split}_foggy", rel), "wb") as f:
        f.write(buf.tobytes())
    return rel, beta, airlight


def _check_settings(src: str, out: str, depth_dir: Optional[str], seed: int, split: str) -> None:
    """Raise :class:`FogUsageError` for settings ``fog_folder`` cannot work with."""
    if not os.path.isdir(src):
        raise FogUsageError(f"--src {src!r} is not a directory")
    src_abs, out_abs = os.path.realpath(src), os.path.realpath(out)
    if os.path.commonpath([src_abs, out_abs]) == src_abs:
        raise FogUsageError(f"--out {out!r} must not be inside --src {src!r} "
                            "(its images would be read back as sources)")
    if depth_dir is not None and not os.path.isdir(depth_dir):
        raise FogUsageError(f"--depth-dir {depth_dir!r} is not a directory")
    if seed < 0:
        raise FogUsageError(f"--seed must be a non-negative integer, got {seed}")
    if not split or os.sep in split or split.startswith("."):
        raise FogUsageError(f"--split must be a plain folder-name prefix such as 'train', got {split!r}")


def fog_folder(src: str, out: str, depth_dir: Optional[str] = None, split: str = "train", seed: int = 0,
               inverse_depth: bool = False, workers: int = 1) -> Dict[str, object]:
    """Write ``out/<split>_clear/<rel>`` (the original bytes) and ``out/<split>_foggy/<rel>`` for every image.

    Relative paths (sub-folders included) are kept, so clear and foggy twins share a name as in
    FVRID. β and A are drawn per image from ``(seed, relative path)``. Returns a summary dict.
    Raises :class:`FogUsageError` for unusable settings (checked before anything is written) and
    :class:`FogError` for unreadable or missing inputs.
    """
    _check_settings(src, out, depth_dir, seed, split)
    rels = list(iter_images(src))
    if not rels:
        raise FogError(f"--src {src!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    if depth_dir is not None:
        for rel in rels:  # fail before writing anything when a depth map is missing
            _find_depth(depth_dir, rel)
    jobs = [(src, out, split, depth_dir, seed, inverse_depth, rel) for rel in rels]
    start = time.time()
    if workers > 1:
        with multiprocessing.get_context().Pool(workers) as pool:
            results = list(pool.imap(_fog_one, jobs, chunksize=16))
    else:
        results = [_fog_one(job) for job in jobs]
    betas = np.array([r[1] for r in results])
    airlights = np.array([r[2] for r in results])
    return {
        "images": len(results),
        "clear_dir": os.path.join(out, f"{split}_clear"),
        "foggy_dir": os.path.join(out, f"{split}_foggy"),
        "depth": "depth maps from " + depth_dir if depth_dir else "ground-plane prior",
        "beta_mean": round(float(betas.mean()), 4),
        "airlight_mean": round(float(airlights.mean()), 4),
        "seconds": round(time.time() - start, 2),
    }

