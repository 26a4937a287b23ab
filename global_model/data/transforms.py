"""OpenCV/numpy image transforms for training and testing (no PIL, no torchvision).

Transforms take an RGB ``uint8`` H×W×3 array and return a normalised float32 C×H×W array. Train
transforms draw every random choice from the ``numpy.random.Generator`` they are given, so the
sampler can hand each sample its own seed: augmentation is then identical whatever the number of
DataLoader workers, and across a resume. Calling a train transform twice with generators seeded
alike applies the same augmentation, which is how paired clear/foggy images stay aligned.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from post_processing.errors import ReidUsageError

from .lowres import LowResDegradation, degrade, eval_lr_scale, train_degradation

__all__ = ["TestTransform", "TrainTransform", "TransformError", "build_transforms", "color_jitter", "random_erasing",
           "to_gray"]


class TransformError(ReidUsageError, ValueError):
    """INPUT sizes that the transform cannot honour."""


def _resize(img: np.ndarray, size_hw: Sequence[int]) -> np.ndarray:
    h, w = int(size_hw[0]), int(size_hw[1])
    if img.shape[0] == h and img.shape[1] == w:
        return img
    shrink = img.shape[0] > h and img.shape[1] > w
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def to_gray(img: np.ndarray) -> np.ndarray:
    """An RGB uint8 image's luminance (ITU-R BT.601, OpenCV's weights) in all three channels: a
    colour-blind member of an ensemble sees shape and texture where the others also see colour casts."""
    return cv2.cvtColor(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def _normalize(img: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """uint8/float [0, 255] H×W×3 → float32 3×H×W, ``(x/255 - mean) / std``."""
    x = img.astype(np.float32) * (1.0 / 255.0)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def color_jitter(img: np.ndarray, rng: np.random.Generator, brightness: float = 0.0, contrast: float = 0.0,
                 saturation: float = 0.0, hue: float = 0.0) -> np.ndarray:
    """Random brightness/contrast/saturation scale and hue shift of an RGB uint8 image (factors 1±x)."""
    x = img.astype(np.float32)
    if brightness > 0:
        x *= rng.uniform(max(0.0, 1 - brightness), 1 + brightness)
    if contrast > 0:
        gray_mean = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).mean()
        f = rng.uniform(max(0.0, 1 - contrast), 1 + contrast)
        x = x * f + gray_mean * (1 - f)
    if saturation > 0:
        gray = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
        f = rng.uniform(max(0.0, 1 - saturation), 1 + saturation)
        x = x * f + gray[..., None] * (1 - f)
    out = np.clip(x, 0, 255).astype(np.uint8)
    if hue > 0:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)  # OpenCV hue range is 0..179
        shift = int(round(rng.uniform(-hue, hue) * 180))
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + shift) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


def random_erasing(x: np.ndarray, rng: np.random.Generator, area: Tuple[float, float] = (0.02, 0.4),
                   aspect: float = 0.3, value: float = 0.0) -> np.ndarray:
    """Zero (the mean colour after normalisation) one random rectangle of a C×H×W array, in place.

    Rectangle area is a fraction of the image in ``area``, aspect ratio in [aspect, 1/aspect]
    (log-uniform); up to 100 tries to fit it, as in Zhong et al.'s random erasing.
    """
    _, h, w = x.shape
    for _ in range(100):
        target = rng.uniform(*area) * h * w
        ratio = np.exp(rng.uniform(np.log(aspect), np.log(1 / aspect)))
        eh, ew = int(round(np.sqrt(target * ratio))), int(round(np.sqrt(target / ratio)))
        if 0 < eh < h and 0 < ew < w:
            y0, x0 = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            x[:, y0:y0 + eh, x0:x0 + ew] = value
            break
    return x


class TrainTransform:
    """Resize → pad + random crop → horizontal flip → colour jitter → normalise → random erasing."""

    def __init__(self, size: Sequence[int], resize: Sequence[int] = (0, 0), padding: int = 10,
                 flip_prob: float = 0.5, re_prob: float = 0.5, cj_prob: float = 0.0,
                 cj: Tuple[float, float, float, float] = (0.2, 0.15, 0.1, 0.0),
                 mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225),
                 lowres: Optional[LowResDegradation] = None, gray: bool = False):
        self.size = (int(size[0]), int(size[1]))
        self.gray = bool(gray)  # luminance only (INPUT.GRAY), before any other step
        self.lowres = lowres  # low-resolution degradation of the image as read (first, when set)
        self.resize = (int(resize[0]), int(resize[1])) if resize and min(resize) > 0 else self.size
        if self.resize[0] < self.size[0] or self.resize[1] < self.size[1]:
            raise TransformError(f"INPUT.RESIZE_TRAIN {list(self.resize)} must be at least INPUT.SIZE_TRAIN "
                                 f"{list(self.size)} (H, W): the crop is taken from the resized image")
        self.padding = int(padding)
        self.flip_prob, self.re_prob, self.cj_prob = float(flip_prob), float(re_prob), float(cj_prob)
        self.cj = tuple(float(v) for v in cj)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def pad_crop_flip(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Zero padding, a random ``SIZE_TRAIN`` crop and a random flip of a resized image (three draws
        from ``rng``, in that order: SAN repeats them on its target with a generator seeded alike)."""
        if self.padding > 0:
            p = self.padding
            img = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        h, w = self.size
        y0 = int(rng.integers(0, img.shape[0] - h + 1))
        x0 = int(rng.integers(0, img.shape[1] - w + 1))
        img = img[y0:y0 + h, x0:x0 + w]
        if rng.random() < self.flip_prob:
            img = img[:, ::-1]
        return img

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.gray:
            img = to_gray(img)
        if self.lowres is not None:
            img = self.lowres(img, rng)
        img = self.pad_crop_flip(_resize(img, self.resize), rng)
        if rng.random() < self.cj_prob:
            img = color_jitter(np.ascontiguousarray(img), rng, *self.cj)
        x = _normalize(img, self.mean, self.std)
        if rng.random() < self.re_prob:
            random_erasing(x, rng)
        return x


class TestTransform:
    """Resize to the test size and normalise (flip TTA is done on batches by the extractor); with
    ``lr_scale`` > 1 the image as read is degraded to low resolution first (``TEST.LR_SCALE``)."""

    def __init__(self, size: Sequence[int], mean: Sequence[float] = (0.485, 0.456, 0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225), lr_scale: float = 1.0, gray: bool = False):
        self.size = (int(size[0]), int(size[1]))
        self.lr_scale = float(lr_scale)
        self.gray = bool(gray)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def __call__(self, img: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        if self.gray:
            img = to_gray(img)
        if self.lr_scale > 1:
            img = degrade(img, self.lr_scale)
        return _normalize(_resize(img, self.size), self.mean, self.std)


def build_transforms(cfg, is_train: bool, split: Optional[str] = None):
    """The train or test transform described by ``cfg.INPUT`` (the test transform of ``split``, which
    ``TEST.LR_SCALE`` / ``TEST.LR_APPLY`` may degrade)."""
    i = cfg.INPUT
    if not is_train:
        return TestTransform(i.SIZE_TEST, i.PIXEL_MEAN, i.PIXEL_STD, eval_lr_scale(cfg, split), i.GRAY)
    return TrainTransform(i.SIZE_TRAIN, i.RESIZE_TRAIN, i.PADDING, i.FLIP_PROB, i.RE_PROB, i.CJ_PROB,
                          (i.CJ_BRIGHTNESS, i.CJ_CONTRAST, i.CJ_SATURATION, i.CJ_HUE), i.PIXEL_MEAN, i.PIXEL_STD,
                          train_degradation(cfg), i.GRAY)
