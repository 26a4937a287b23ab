"""Where each training image's SAN target comes from (``MODEL.SAN.TARGET`` and ``TARGET_DIR``).

``texture``: ``TARGET_DIR`` mirrors each ``DATASETS.TRAIN`` root: the target of
``<root>/image_train/000001.jpg`` is ``<TARGET_DIR>/image_train/000001.<ext>`` with any image
extension (e.g. ``.png``). The synthetic benchmark writes such a folder, ``san_targets/``, with each
identity's canonical texture layout (:mod:`global_model.data.synth.san_targets`); for real data
it holds e.g. texture maps from a pose/texture model. A relative ``TARGET_DIR`` is inside
``DATASETS.ROOT``. Every training image needs exactly one target; missing ones are an error that
names them.

``reconstruct``: the documented weaker fallback, the target is the record's clear twin (foggy
images with ``clear_path``) or the image itself: an aligned autoencoder regulariser with no
cross-view alignment to learn.

The path is kept in the record's ``attrs["san_target"]``.
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Dict, List, Optional, Sequence

from post_processing.fileio import IMAGE_EXTENSIONS

from ..data.dataset import parse_dataset_spec
from ..data.datasets import DatasetError
from ..data.records import ImageRecord
from .config import TARGET_MODES, SANConfigError

__all__ = ["TARGET_KEY", "attach_targets", "find_target", "target_dir"]

TARGET_KEY = "san_target"


def target_dir(cfg) -> str:
    """``MODEL.SAN.TARGET_DIR``, a relative one taken inside ``DATASETS.ROOT``."""
    path = cfg.MODEL.SAN.TARGET_DIR
    if not path:
        raise SANConfigError("MODEL.SAN.TARGET texture needs MODEL.SAN.TARGET_DIR (the folder of target images)")
    return path if os.path.isabs(path) else os.path.join(cfg.DATASETS.ROOT, path)


class _Listing:
    """Image files of target folders by stem, each folder listed once."""

    def __init__(self):
        self._dirs: Dict[str, Dict[str, List[str]]] = {}

    def stems(self, folder: str) -> Dict[str, List[str]]:
        if folder not in self._dirs:
            found: Dict[str, List[str]] = {}
            if os.path.isdir(folder):
                for name in sorted(os.listdir(folder)):
                    stem, ext = os.path.splitext(name)
                    if ext.lower() in IMAGE_EXTENSIONS:
                        found.setdefault(stem, []).append(os.path.join(folder, name))
            self._dirs[folder] = found
        return self._dirs[folder]


def find_target(folder: str, relative: str, listing: Optional[_Listing] = None) -> List[str]:
    """The image files under ``folder`` whose path is ``relative`` with any image extension."""
    sub, name = os.path.split(relative)
    return (listing or _Listing()).stems(os.path.join(folder, sub)).get(os.path.splitext(name)[0], [])


def _relative(path: str, roots: Sequence[str]) -> str:
    """``path`` relative to the first training root that contains it."""
    real = os.path.abspath(path)
    for root in roots:
        root = os.path.abspath(root)
        if os.path.commonpath([real, root]) == root:
            return os.path.relpath(real, root)
    raise DatasetError(f"training image {path} lies under none of the DATASETS.TRAIN roots ({', '.join(roots)}); "
                       f"MODEL.SAN.TARGET texture finds targets by the path inside that root")


def attach_targets(cfg, records: Sequence[ImageRecord]) -> List[ImageRecord]:
    """``records`` with ``attrs["san_target"]`` set per ``MODEL.SAN.TARGET``; raises naming missing targets."""
    mode = cfg.MODEL.SAN.TARGET
    if mode not in TARGET_MODES:
        raise SANConfigError(f"MODEL.SAN.TARGET must be one of {', '.join(TARGET_MODES)}, got {mode!r}")
    if mode == "reconstruct":
        return [replace(r, attrs={**r.attrs, TARGET_KEY: r.clear_path or r.path}) for r in records]
    folder = target_dir(cfg)
    if not os.path.isdir(folder):
        raise DatasetError(f"MODEL.SAN.TARGET_DIR {folder!r} does not exist; it must hold one target image per "
                           f"training image (generate the synthetic benchmark again, or set MODEL.SAN.TARGET "
                           f"reconstruct)")
    roots = [parse_dataset_spec(spec, cfg.DATASETS.ROOT)[1] for spec in cfg.DATASETS.TRAIN]
    listing, out, missing, ambiguous = _Listing(), [], [], []
    for r in records:
        relative = _relative(r.path, roots)
        found = find_target(folder, relative, listing)
        if len(found) == 1:
            out.append(replace(r, attrs={**r.attrs, TARGET_KEY: found[0]}))
        else:
            (ambiguous if found else missing).append(os.path.join(folder, os.path.splitext(relative)[0]))
    if missing or ambiguous:
        problem = (f"{len(missing)} of {len(records)} training images have no target (e.g. "
                   f"{', '.join(p + '.<ext>' for p in missing[:3])})" if missing else
                   f"{len(ambiguous)} training images have several targets with different extensions "
                   f"(e.g. {ambiguous[0]}.*)")
        raise DatasetError(f"MODEL.SAN.TARGET_DIR {folder}: {problem}; expected one image "
                           f"({', '.join(IMAGE_EXTENSIONS)}) per training image at the image's path inside its "
                           f"DATASETS.TRAIN root")
    return out
