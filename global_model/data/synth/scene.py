"""Cameras and tracks: where each camera looks from and what it does to light, and each sighting.

Each camera has its own viewpoint range, lighting, colour cast, resolution, blur, noise, JPEG
quality and fog level (fog grows with the camera index); a (vehicle, camera) sighting is a track of
a few frames sharing a pose and conditions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from .streams import T_CAMERA, T_SIGHTINGS, T_TRACK, stream

VIEW_TEMPLATES = (40.0, -40.0, 8.0, 55.0, -55.0, 22.0, -15.0, 50.0)  # yaw centres (0 = side, 90 = front)

# Sightings per identity: (min, max) cameras and (min, max) frames per track. Test identities are
# seen by more cameras in longer tracks, as in AIC20, whose test set has ~55 gallery images per id
# (k-reciprocal re-ranking needs several true matches in a neighbourhood to help).
TRAIN_SIGHTINGS = ((2, 4), (2, 4))
TEST_SIGHTINGS = ((3, 6), (4, 8))


@dataclass(frozen=True)
class Camera:
    camid: int  # 1-based
    yaw: float
    yaw_spread: float
    two_way: float
    pitch: float
    fog_prob: float
    fog_near: float
    fog_far_ratio: float
    margin: float
    gains: Tuple[float, float, float]  # BGR
    brightness: float
    saturation: float
    gamma: float
    resolution: float
    blur: float
    noise: float
    jpeg: int
    sun: Tuple[float, float, float]
    ambient: float
    sky: Tuple[float, float, float]


def make_cameras(seed: int, n: int) -> List[Camera]:
    """``n`` cameras: viewpoint templates with seeded jitter; fog grows with the camera index."""
    cams = []
    for i in range(n):
        rng = stream(seed, T_CAMERA, i + 1)
        frac = i / max(1, n - 1)
        gains = rng.uniform(.88, 1.12, 3)
        sun_az, sun_el = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(25, 70))
        cams.append(Camera(
            camid=i + 1, yaw=VIEW_TEMPLATES[i % len(VIEW_TEMPLATES)] + rng.uniform(-8, 8),
            yaw_spread=float(rng.uniform(8, 16)), two_way=float(rng.uniform(.2, .5)),
            pitch=float(rng.uniform(10, 32)),
            fog_prob=float(np.clip((frac - .25) * 1.7, 0, 1)), fog_near=float(.05 + .15 * frac),
            fog_far_ratio=float(rng.uniform(3, 6)), margin=float(rng.uniform(.03, .1)),
            gains=tuple(float(g) for g in gains / gains.mean()), brightness=float(rng.uniform(.85, 1.1)),
            saturation=float(rng.uniform(.75, 1.1)), gamma=float(rng.uniform(.85, 1.2)),
            resolution=float(rng.uniform(.55, 1.0)), blur=float(rng.uniform(0, .8)),
            noise=float(rng.uniform(1, 4)), jpeg=int(rng.integers(50, 96)),
            sun=(math.cos(sun_el) * math.cos(sun_az), math.sin(sun_el), math.cos(sun_el) * math.sin(sun_az)),
            ambient=float(rng.uniform(.45, .65)), sky=tuple(float(v) for v in rng.uniform(150, 235, 3))))
    return cams


@dataclass(frozen=True)
class Track:
    """One sighting of a vehicle by a camera: pose and conditions shared by its frames."""

    pid: int
    camid: int
    frames: int
    start_frame: int
    foggy: bool
    yaw: float
    yaw_step: float
    pitch: float
    distance: float
    lane: float
    light: float


def make_track(seed: int, pid: int, cam: Camera, frames: Tuple[int, int] = (2, 4)) -> Track:
    """The sighting of ``pid`` by ``cam``: ``frames`` is the (min, max) track length."""
    rng = stream(seed, T_TRACK, pid, cam.camid)
    yaw = cam.yaw + rng.uniform(-cam.yaw_spread, cam.yaw_spread)
    if rng.random() < cam.two_way:  # oncoming traffic: the camera sees the other end and side
        yaw += 180.0
    return Track(pid=pid, camid=cam.camid, frames=int(rng.integers(frames[0], frames[1] + 1)),
                 start_frame=int(rng.integers(1, 900000)),
                 foggy=bool(rng.random() < cam.fog_prob), yaw=float(yaw), yaw_step=float(rng.uniform(-6, 6)),
                 pitch=float(cam.pitch + rng.uniform(-4, 4)), distance=float(rng.uniform(1.6, 2.6)),
                 lane=float(rng.uniform(-.5, .5)), light=float(rng.uniform(.9, 1.1)))


def sightings(seed: int, pid: int, cameras: Sequence[Camera], test: bool = False) -> List[Track]:
    """The tracks of one vehicle on distinct cameras (fewer if there are fewer cameras)."""
    (lo, hi), frames = TEST_SIGHTINGS if test else TRAIN_SIGHTINGS
    rng = stream(seed, T_SIGHTINGS, pid)
    k = int(rng.integers(min(lo, len(cameras)), min(hi, len(cameras)) + 1))
    chosen = sorted(int(c) for c in rng.choice(len(cameras), k, replace=False))
    return [make_track(seed, pid, cameras[c], frames) for c in chosen]
