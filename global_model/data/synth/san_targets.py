"""SAN targets of the synthetic benchmark: each identity's body texture unwrapped into a fixed layout.

For every AIC training image ``image_train/NAME.jpg`` the benchmark writes
``san_targets/image_train/NAME.png``: the canonical appearance of the image's identity, free of
pose, camera, fog, lighting and background — a pure function of the identity, so two images of
one vehicle from different cameras get the same target (byte for byte) and the SAN decoder has a
real alignment task (from any view to one layout). The layout, at the benchmark's image size H×W
on a neutral grey:

- top half: the body side (front to the left), stretched to the full width, so wheels, windows,
  stripes and stickers sit at the same relative place for every vehicle of a type;
- bottom half, left to right: the front face, the top panels (hood, windscreens, roof, trunk or
  bed, front to rear, top to bottom) and the rear face, each stretched to a third of the width.

The faces are the renderer's own textures (:func:`~.renderer.face_textures`) without shading.
Roof gear (rails, boxes, signs) is modelled by the renderer outside the textures and is not shown.
No random draw is made: the existing files of a seed stay byte-identical.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Tuple

import cv2
import numpy as np

from post_processing.errors import ReidError

from .geometry import body_faces
from .look import Look, make_look
from .plan import Plan, RenderJob, plan
from .renderer import face_textures

__all__ = ["SAN_TARGETS_DIR", "add_san_targets", "target_layout", "target_paths", "write_san_targets"]

SAN_TARGETS_DIR = "san_targets"
BACKGROUND = 128.0  # neutral grey outside the faces
_TRAIN_FOLDER = "image_train/"


def _paste(canvas: np.ndarray, texture: Tuple[np.ndarray, np.ndarray], box: Tuple[int, int, int, int]) -> None:
    """Stretch a premultiplied texture over ``box`` (x0, y0, x1, y1) of ``canvas`` (in place)."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    img, mask = texture
    size = (x1 - x0, y1 - y0)
    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    roi = canvas[y0:y1, x0:x1]
    roi[:] = roi * (1 - mask[..., None]) + img


def _top_strip(look: Look, textures) -> Tuple[np.ndarray, np.ndarray]:
    """The top panels (profile edges other than the ends), front to rear, stacked along their length."""
    keys = [f.key for f in body_faces(look) if f.role not in ("side", "front", "rear", "bottom")]
    panels = [textures[k] for k in dict.fromkeys(keys)]
    width = max(p[1].shape[1] for p in panels)
    panels = [(cv2.resize(img, (width, img.shape[0])), cv2.resize(mask, (width, mask.shape[0])))
              for img, mask in panels]
    return np.concatenate([p[0] for p in panels]), np.concatenate([p[1] for p in panels])


def target_layout(look: Look, size: Tuple[int, int]) -> np.ndarray:
    """The H×W BGR uint8 target of ``look`` (see the module docstring)."""
    h, w = size
    textures = face_textures(look)
    canvas = np.full((h, w, 3), BACKGROUND, np.float32)
    by_role = {f.role: textures[f.key] for f in body_faces(look) if f.role in ("front", "rear")}
    half, third = h // 2, w // 3
    _paste(canvas, textures["side"], (0, 0, w, half))
    _paste(canvas, by_role["front"], (0, half, third, h))
    _paste(canvas, _top_strip(look, textures), (third, half, w - third, h))
    _paste(canvas, by_role["rear"], (w - third, half, w, h))
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


def target_paths(job: RenderJob) -> List[str]:
    """Output paths (relative to the benchmark folder) of the targets of ``job``'s AIC training images."""
    return [f"{SAN_TARGETS_DIR}/{os.path.splitext(rel)[0]}.png" for s in job.sightings for f in s.frames
            for rel, _ in f.outputs if rel.startswith(_TRAIN_FOLDER)]


def write_san_targets(out_dir: str, p: Plan, size: Tuple[int, int]) -> int:
    """Write the target of every AIC training image of plan ``p`` under ``out_dir``; returns the count."""
    os.makedirs(os.path.join(out_dir, SAN_TARGETS_DIR, _TRAIN_FOLDER), exist_ok=True)
    count = 0
    for job in p.jobs:
        paths = target_paths(job)
        if not paths:
            continue
        ok, buf = cv2.imencode(".png", target_layout(make_look(job.identity), size))
        if not ok:
            raise RuntimeError("cv2.imencode failed to write a PNG")
        for rel in paths:
            with open(os.path.join(out_dir, rel), "wb") as f:
                f.write(buf.tobytes())
            count += 1
    return count


def add_san_targets(data_dir: str) -> int:
    """Write the targets into an existing benchmark folder (made before targets existed), re-planning it
    from its ``summary.json``; returns the count. The planned training images must all be there."""
    try:
        with open(os.path.join(data_dir, "summary.json"), encoding="utf-8") as f:
            summary: Dict = json.load(f)
        ids = summary["ids"]
        p = plan(int(summary["seed"]), ids["train"] + ids["test"], test_ids=ids["test"],
                 cameras=int(summary["cameras"]), real_ids=ids["real_train"] + ids["real_test"])
        size = tuple(int(v) for v in summary["size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReidError(f"{data_dir}: not a synthetic benchmark with a readable summary.json ({exc})") from None
    absent = [rel for job in p.jobs for s in job.sightings for f in s.frames for rel, _ in f.outputs
              if rel.startswith(_TRAIN_FOLDER) and not os.path.isfile(os.path.join(data_dir, rel))]
    if absent:
        raise ReidError(f"{data_dir}: {len(absent)} planned training images are missing (e.g. {absent[0]}); "
                        f"it was not written by this generator with the settings of its summary.json")
    return write_san_targets(data_dir, p, size)
