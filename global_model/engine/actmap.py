"""Activation maps: where a trained model looks, for every image of a folder (``python -m global_model actmap``).

The map is torchreid's recipe (``tools/visualize_actmap.py``): the backbone's last feature map,
squared and summed over channels, L2-normalised over its positions, resized to the image and
scaled to 0..255. Each image gets one PNG: the image at the test size, the map (JET colours) and
the two blended, side by side. Models with a ``backbone`` (the baseline family: baseline, SJDL's
encoder and the families built on them) are supported; others raise a :class:`ActmapError`.
"""
from __future__ import annotations

import glob
import os
from typing import List, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from post_processing.errors import ReidError
from post_processing.fileio import IMAGE_EXTENSIONS, atomic_write

from ..data.image_io import read_image

__all__ = ["ActmapError", "activation_maps", "actmap_panel", "folder_images", "write_actmaps"]

GAP = 8  # white pixels between the panels
BLEND = 0.5  # weight of the map in the overlay


class ActmapError(ReidError, ValueError):
    """A model without a backbone feature map, or a folder without images."""


def folder_images(src: str) -> List[str]:
    """Image files under ``src`` (recursive), sorted; raises when there are none."""
    if not os.path.isdir(src):
        raise ActmapError(f"--src {src}: not a folder")
    paths = sorted(p for p in glob.glob(os.path.join(src, "**", "*"), recursive=True)
                   if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise ActmapError(f"--src {src}: no image files ({', '.join(IMAGE_EXTENSIONS)}) under it")
    return paths


def activation_maps(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """B×h×w maps in [0, 1] of a preprocessed batch (``model`` in eval mode): the backbone's last
    map, channel-summed squares, L2-normalised over positions, then min-max scaled per image."""
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise ActmapError(f"activation maps need a model with a 'backbone' feature map; "
                          f"{type(model).__name__} has none")
    with torch.inference_mode():
        fmap = backbone(images).float()
    act = fmap.pow(2).sum(1)
    b, h, w = act.shape
    act = F.normalize(act.reshape(b, -1), p=2, dim=1).reshape(b, h, w)
    lo = act.amin(dim=(1, 2), keepdim=True)
    hi = act.amax(dim=(1, 2), keepdim=True)
    return (act - lo) / (hi - lo).clamp(min=1e-12)


def actmap_panel(image_rgb: np.ndarray, act: np.ndarray) -> np.ndarray:
    """One H×(3W+2·GAP)×3 uint8 RGB panel: ``image_rgb`` (H×W×3), the map resized to it (JET), the blend."""
    h, w = image_rgb.shape[:2]
    heat = cv2.resize(np.asarray(act, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255 + 0.5), cv2.COLORMAP_JET)[..., ::-1]
    blend = np.uint8(np.clip(image_rgb * (1 - BLEND) + heat * BLEND, 0, 255) + 0.5)
    gap = np.full((h, GAP, 3), 255, np.uint8)
    return np.concatenate([image_rgb, gap, heat, gap, blend], axis=1)


def _out_names(paths: Sequence[str], src: str, out_dir: str) -> List[str]:
    """``out_dir/<path under src without extension>.png``; images that would share one (``a.jpg`` and
    ``a.png``) keep their extension in the name (``a.jpg.png``)."""
    stems = [os.path.splitext(os.path.relpath(p, src))[0] for p in paths]
    taken = {s for s in stems if stems.count(s) > 1}
    return [os.path.join(out_dir, (os.path.relpath(p, src) if s in taken else s) + ".png")
            for p, s in zip(paths, stems)]


def write_actmaps(model: nn.Module, cfg, paths: Sequence[str], src: str, out_dir: str,
                  device: torch.device, progress: bool = True) -> List[Tuple[str, str]]:
    """Write one panel PNG per image of ``paths`` (files under ``src``) to ``out_dir``, keeping the
    sub-folders; returns ``[(image, png)]``. ``model`` is in eval mode on ``device``."""
    from post_processing.progress import progress_bar

    from ..data.transforms import build_transforms

    transform = build_transforms(cfg, is_train=False)
    h, w = cfg.INPUT.SIZE_TEST
    batch_size = max(1, int(cfg.TEST.IMS_PER_BATCH))
    targets = _out_names(paths, src, out_dir)
    written = []
    starts = range(0, len(paths), batch_size)
    for start in progress_bar(starts, progress, desc="actmap", unit="batch", leave=False):
        chunk = paths[start:start + batch_size]
        images = [read_image(p) for p in chunk]
        batch = torch.from_numpy(np.stack([transform(img) for img in images])).to(device)
        maps = activation_maps(model, batch).cpu().numpy()
        for path, target, image, act in zip(chunk, targets[start:start + batch_size], images, maps):
            shown = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
            ok, png = cv2.imencode(".png", actmap_panel(shown, act)[..., ::-1])
            if not ok:
                raise ActmapError(f"cannot encode the activation map of {path} as PNG")
            with atomic_write(target, "wb") as f:
                f.write(png.tobytes())
            written.append((path, target))
    return written
