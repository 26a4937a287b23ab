"""Projective geometry: the pinhole view, the body's planar faces and texture warping.

World axes: x along the vehicle (front at -length/2), y up, z across; the ground is y = 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple, Union

import cv2
import numpy as np

from .look import Look
from .textures import PX_PER_M

Vec3 = Tuple[float, float, float]


@dataclass(frozen=True)
class View:
    """Pinhole camera looking at the vehicle, plus the 2-D transform from normalised image
    coordinates to canvas pixels."""

    R: np.ndarray  # rows: image right, image down, forward
    P: np.ndarray  # camera centre
    M: np.ndarray  # 3x3 affine: normalised image -> canvas pixels

    def project(self, pts: np.ndarray) -> np.ndarray:
        """World points (n, 3) -> canvas pixels (n, 2)."""
        c = (np.asarray(pts, np.float64) - self.P) @ self.R.T
        h = c @ self.M.T
        return h[:, :2] / h[:, 2:3]

    def plane(self, origin, ax, ay) -> np.ndarray:
        """Homography from texture pixels (x, y) of the plane origin + x*ax + y*ay to canvas pixels."""
        basis = np.stack([self.R @ np.asarray(ax, float), self.R @ np.asarray(ay, float),
                          self.R @ (np.asarray(origin, float) - self.P)], 1)
        return self.M @ basis


def look_at(yaw_deg: float, pitch_deg: float, dist: float, target: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Rotation (rows: right, down, forward) and centre of a camera ``dist`` from ``target``."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    offset = np.array([-math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    P = target + dist * offset
    f = -offset
    r = np.cross(f, [0.0, 1.0, 0.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    return np.stack([r, -u, f]), P


@dataclass(frozen=True)
class Face:
    """A planar face of the body: world point of texture pixel (x, y) = origin + x*ax + y*ay."""

    key: Union[str, int]  # "side" for both sides (they share a texture), else the profile edge index
    origin: Vec3
    ax: Vec3
    ay: Vec3
    normal: Vec3
    role: str
    size: Tuple[float, float]  # texture size in metres (across / along)


def body_faces(look: Look) -> List[Face]:
    """Both sides, then one face per profile edge except the bottom."""
    L, H, W, s = look.length, look.height, look.width, PX_PER_M
    x0 = -L / 2
    faces = [Face("side", (x0, H, W / 2), (1 / s, 0, 0), (0, -1 / s, 0), (0, 0, 1), "side", (L, H)),
             Face("side", (x0, H, -W / 2), (1 / s, 0, 0), (0, -1 / s, 0), (0, 0, -1), "side", (L, H))]
    prof, n = look.profile, len(look.profile)
    for i in range(n):
        role = look.roles[i]
        if role == "bottom":
            continue
        p, q = prof[i], prof[(i + 1) % n]
        d = q - p
        length = float(np.hypot(*d))
        normal = (-d[1] / length, d[0] / length, 0.0)
        start, end = (p, q) if (p[1] > q[1] + 1e-6 or (abs(p[1] - q[1]) <= 1e-6 and p[0] < q[0])) else (q, p)
        along = (end - start) / length / s
        faces.append(Face(i, (start[0] + x0, start[1], -W / 2), (0, 0, 1 / s), (along[0], along[1], 0), normal, role,
                          (W, length)))
    return faces


def composite(canvas: np.ndarray, vmask: np.ndarray, tex: np.ndarray, tmask: np.ndarray, H: np.ndarray,
              shade: float) -> None:
    """Warp a premultiplied texture into ``canvas`` (in place) through homography ``H``, scaled by
    ``shade``; ``vmask`` accumulates the vehicle's coverage."""
    th, tw = tmask.shape
    corners = np.array([[0, 0, 1], [tw, 0, 1], [tw, th, 1], [0, th, 1]], float) @ H.T
    if (corners[:, 2] <= 1e-9).any():
        return
    xy = corners[:, :2] / corners[:, 2:3]
    ch, cw = canvas.shape[:2]
    x0, y0 = max(0, int(math.floor(xy[:, 0].min()))), max(0, int(math.floor(xy[:, 1].min())))
    x1, y1 = min(cw, int(math.ceil(xy[:, 0].max())) + 1), min(ch, int(math.ceil(xy[:, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    Ht = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], float) @ H
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpPerspective(tex, Ht, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    wm = cv2.warpPerspective(tmask, Ht, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    roi = canvas[y0:y1, x0:x1]
    roi *= (1 - wm)[..., None]
    roi += warped * shade
    np.maximum(vmask[y0:y1, x0:x1], wm, out=vmask[y0:y1, x0:x1])
