"""Synthetic foggy-vehicle ReID benchmark: ``python -m global_model synth --out DIR``.

Vehicles are drawn procedurally with OpenCV as extruded side profiles under a pinhole camera:
every face is a texture mapped by the exact plane homography, so wheels become ellipses and
stickers foreshorten with the viewpoint. An identity is a body type (with a small shape jitter),
a body colour from a palette with near-duplicate shades and a set of marks (stripes, stickers,
roof gear, wheel style, window tint, trim, lights, plate); "sibling" identities copy another one
and change two marks, as fleets do. Each camera has its own viewpoint range, road background,
lighting, colour cast, resolution, blur, noise, JPEG quality and fog level; a (vehicle, camera)
sighting is a track of 2-4 frames. Fog follows the scattering model of ``fog.py`` with a
ground-plane depth map from the camera geometry (the vehicle at its contact depth).

Output (``DIR``): the AIC20 / CityFlow-ReID layout (plus ground truth for query and test in the
train-label schema) and an FVRID-style view under ``DIR/fvrid`` (``FVRID_syn`` clear/foggy twins of
the same images, ``FVRID_real`` unpaired foggy images of other identities with uneven, tinted
fog). Every random draw comes from ``numpy.random.default_rng([seed, tag, ...])`` keyed by what
it decides (identity, camera, track, frame), so output is byte-identical for a seed whatever the
number of worker processes. numpy + OpenCV only (no torch).
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from post_processing.fileio import atomic_write

from .fog import add_fog, ground_plane_depth, sample_fog

# ---------------------------------------------------------------------------------------------
# Random streams: one tag per kind of decision, so adding a draw somewhere never shifts another.
T_IDENTITY, T_CAMERA, T_TRACK, T_FRAME, T_ORDER, T_GROUND, T_QUERY, T_SIGHTINGS = range(1, 9)
REAL_PID_BASE = 10000  # FVRID_real identities are 10001.. (AIC ids are at most 9999)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *[int(k) for k in keys]])


# ---------------------------------------------------------------------------------------------
# Vehicle types: side profile (clockwise from the front bottom, metres, x rearwards, y up) with
# the role of the edge that starts at each point; side windows, pillars, axles.


@dataclass(frozen=True)
class VehicleType:
    name: str
    width: float
    profile: Tuple[Tuple[float, float, str], ...]
    windows: Tuple[Tuple[Tuple[float, float], ...], ...]
    pillars: Tuple[float, ...]
    axles: Tuple[float, ...]
    wheel_r: float
    front_glass: float = 0.0  # top fraction of the front face that is windscreen (buses, trucks)
    rear_glass: float = 0.0
    weight: float = 1.0  # how common the type is


TYPES: Tuple[VehicleType, ...] = (
    VehicleType("sedan", 1.80,
                ((0, .30, "front"), (0, .75, "hood"), (1.25, .92, "glass"), (1.95, 1.42, "roof"),
                 (3.35, 1.42, "glass"), (4.0, 1.0, "trunk"), (4.7, .95, "rear"), (4.7, .30, "bottom")),
                (((1.35, .98), (1.98, 1.36), (3.32, 1.36), (3.88, .98)),), (2.62,), (.95, 3.8), .33,
                weight=.24),
    VehicleType("hatchback", 1.75,
                ((0, .30, "front"), (0, .75, "hood"), (1.0, .95, "glass"), (1.7, 1.48, "roof"),
                 (3.55, 1.48, "glass"), (4.05, 1.05, "rear"), (4.05, .30, "bottom")),
                (((1.1, 1.0), (1.75, 1.42), (3.5, 1.42), (3.9, 1.05)),), (2.45,), (.85, 3.3), .31, weight=.12),
    VehicleType("coupe", 1.85,
                ((0, .25, "front"), (0, .62, "hood"), (1.5, .82, "glass"), (2.3, 1.28, "roof"),
                 (3.25, 1.28, "glass"), (4.45, .85, "rear"), (4.45, .25, "bottom")),
                (((1.62, .88), (2.34, 1.22), (3.2, 1.22), (3.95, .9)),), (), (1.0, 3.6), .33, weight=.08),
    VehicleType("suv", 1.90,
                ((0, .42, "front"), (0, .98, "hood"), (1.0, 1.15, "glass"), (1.6, 1.75, "roof"),
                 (4.5, 1.75, "glass"), (4.8, 1.3, "rear"), (4.8, .42, "bottom")),
                (((1.1, 1.2), (1.66, 1.69), (4.42, 1.69), (4.62, 1.25)),), (2.5, 3.65), (.95, 3.9), .38,
                weight=.20),
    VehicleType("van", 1.95,
                ((0, .36, "front"), (0, 1.0, "hood"), (.6, 1.3, "glass"), (1.2, 2.0, "roof"),
                 (5.0, 2.0, "rear"), (5.0, .36, "bottom")),
                (((.72, 1.34), (1.25, 1.94), (4.9, 1.94), (4.9, 1.34)),), (1.95, 3.5), (.9, 4.1), .34,
                rear_glass=.35, weight=.10),
    VehicleType("pickup", 1.90,
                ((0, .45, "front"), (0, 1.05, "hood"), (1.3, 1.2, "glass"), (1.9, 1.85, "roof"),
                 (3.0, 1.85, "glass"), (3.1, 1.25, "bed"), (5.3, 1.25, "rear"), (5.3, .45, "bottom")),
                (((1.4, 1.26), (1.95, 1.8), (2.95, 1.8), (2.99, 1.26)),), (2.35,), (1.0, 4.3), .40,
                weight=.10),
    VehicleType("bus", 2.50,
                ((0, .40, "front"), (0, 3.0, "body"), (.2, 3.2, "roof"), (11.0, 3.2, "rear"),
                 (11.0, .40, "bottom")),
                (((.35, 1.9), (.35, 2.9), (10.8, 2.9), (10.8, 1.9)),),
                (1.2, 2.4, 3.6, 4.8, 6.0, 7.2, 8.4, 9.6), (2.0, 8.6), .50,
                front_glass=.5, rear_glass=.3, weight=.06),
    VehicleType("truck", 2.40,
                ((0, .50, "front"), (0, 2.2, "body"), (.3, 2.6, "roof"), (2.0, 2.6, "body"),
                 (2.0, 3.4, "roof"), (7.5, 3.4, "rear"), (7.5, .50, "bottom")),
                (((.2, 1.7), (.38, 2.45), (1.75, 2.45), (1.75, 1.7)),), (), (1.0, 5.6, 6.6), .45,
                front_glass=.45, weight=.10),
)

# Body colours (RGB): families of near-duplicate shades, weighted like real traffic.
COLOUR_FAMILIES: Tuple[Tuple[str, float, Tuple[Tuple[int, int, int], ...]], ...] = (
    ("white", .22, ((245, 245, 245), (234, 234, 226), (250, 244, 232))),
    ("silver", .14, ((194, 197, 202), (178, 180, 182))),
    ("grey", .12, ((128, 130, 134), (104, 106, 110))),
    ("black", .18, ((28, 28, 30), (42, 38, 46))),
    ("red", .09, ((190, 28, 30), (158, 20, 30), (204, 48, 40))),
    ("blue", .10, ((30, 62, 160), (24, 44, 118), (58, 92, 178))),
    ("green", .04, ((32, 110, 60), (56, 94, 54))),
    ("yellow", .04, ((232, 200, 42), (236, 184, 22))),
    ("orange", .03, ((230, 112, 32),)),
    ("brown", .04, ((118, 80, 50), (198, 178, 140))),
)
MARK_COLOURS: Tuple[Tuple[int, int, int], ...] = (  # RGB; stripes, stickers, roof boxes
    (245, 245, 245), (20, 20, 22), (210, 30, 30), (240, 200, 30), (30, 80, 200), (240, 120, 20),
    (30, 150, 70), (170, 60, 190), (0, 170, 200))
STRIPES = ("none", "belt", "double", "band", "slash", "center", "checker")
STICKERS = ("none", "circle", "square", "triangle", "star", "diamond", "ring", "number")
STICKER_POSITIONS = ("front_door", "rear_door", "quarter")
ROOF_GEAR = ("none", "rails", "crossbars", "box", "sign", "ladder", "sunroof")
RIM_COLOURS = ((200, 202, 206), (40, 40, 44), (200, 170, 80), (235, 235, 235), (110, 112, 118))
RIM_STYLES = ("disc", "spoke5", "spoke6", "multi", "steel")
TINTS = ((120, 135, 150), (70, 78, 90), (26, 28, 34), (60, 80, 120))  # glass RGB: clear..dark, blue
TRIMS = ("black", "body", "chrome")
TWO_TONE = ("none", "white", "black")
HEADLIGHTS = ("round", "rect", "slim")
TAILLIGHTS = ("bar", "blocks", "tall")
PLATES = ((240, 240, 236), (240, 210, 40))
# Marks a sibling identity may change (each is an Identity field drawn from its own choices).
MARK_FIELDS = ("stripe", "stripe_colour", "sticker", "sticker_colour", "sticker_pos", "roof", "rim_colour",
               "rim_style", "tint", "trim", "two_tone", "headlight", "taillight", "plate")


@dataclass(frozen=True)
class Identity:
    """Everything that makes a vehicle look like itself (indices into the tables above)."""

    pid: int
    vtype: int
    family: int
    shade: int
    stripe: int
    stripe_colour: int
    sticker: int
    sticker_colour: int
    sticker_pos: int
    sticker_size: float
    roof: int
    rim_colour: int
    rim_style: int
    tint: int
    trim: int
    two_tone: int
    headlight: int
    taillight: int
    plate: int
    length_scale: float
    height_scale: float

    def signature(self) -> tuple:
        """Attributes that must differ between two identities (the pid and size jitter excluded)."""
        return tuple(getattr(self, f) for f in ("vtype", "family", "shade") + MARK_FIELDS)


_MARK_CHOICES = {
    "stripe": (len(STRIPES), (.34, .14, .12, .12, .1, .1, .08)),
    "stripe_colour": (len(MARK_COLOURS), None),
    "sticker": (len(STICKERS), (.28, .12, .12, .1, .1, .1, .09, .09)),
    "sticker_colour": (len(MARK_COLOURS), None),
    "sticker_pos": (len(STICKER_POSITIONS), None),
    "roof": (len(ROOF_GEAR), (.45, .1, .1, .1, .08, .07, .1)),
    "rim_colour": (len(RIM_COLOURS), None),
    "rim_style": (len(RIM_STYLES), None),
    "tint": (len(TINTS), (.3, .3, .25, .15)),
    "trim": (len(TRIMS), None),
    "two_tone": (len(TWO_TONE), (.7, .15, .15)),
    "headlight": (len(HEADLIGHTS), None),
    "taillight": (len(TAILLIGHTS), None),
    "plate": (len(PLATES), (.75, .25)),
}


def _choice(rng: np.random.Generator, n: int, p: Optional[Sequence[float]] = None) -> int:
    if p is None:
        return int(rng.integers(n))
    p = np.asarray(p, dtype=np.float64)
    return int(rng.choice(n, p=p / p.sum()))


def _draw_identity(rng: np.random.Generator, pid: int) -> Identity:
    vtype = _choice(rng, len(TYPES), [t.weight for t in TYPES])
    family = _choice(rng, len(COLOUR_FAMILIES), [f[1] for f in COLOUR_FAMILIES])
    marks = {name: _choice(rng, n, p) for name, (n, p) in _MARK_CHOICES.items()}
    return Identity(pid=pid, vtype=vtype, family=family, shade=int(rng.integers(len(COLOUR_FAMILIES[family][2]))),
                    sticker_size=float(rng.uniform(.4, .65)), length_scale=float(rng.uniform(.95, 1.05)),
                    height_scale=float(rng.uniform(.95, 1.05)), **marks)


def make_identities(seed: int, pids: Sequence[int], sibling_rate: float = 0.2) -> List[Identity]:
    """Identities for ``pids`` in order; a fraction are siblings of an earlier one (two marks changed).

    Siblings are taken only from the same list, so train and test identities stay independent.
    Signatures are unique: a draw that repeats an earlier identity is redrawn.
    """
    out: List[Identity] = []
    seen = set()
    for pid in pids:
        for attempt in range(1000):
            rng = _rng(seed, T_IDENTITY, pid, attempt)
            ident = _draw_identity(rng, pid)
            if out and rng.random() < sibling_rate:
                parent = out[int(rng.integers(len(out)))]
                changed = rng.choice(len(MARK_FIELDS), 2, replace=False)
                updates = {MARK_FIELDS[i]: getattr(ident, MARK_FIELDS[i]) for i in changed}
                ident = replace(parent, pid=pid, length_scale=ident.length_scale,
                                height_scale=ident.height_scale, **updates)
            if ident.signature() not in seen:
                break
        seen.add(ident.signature())
        out.append(ident)
    return out


# ---------------------------------------------------------------------------------------------
# Cameras and tracks.

VIEW_TEMPLATES = (40.0, -40.0, 8.0, 55.0, -55.0, 22.0, -15.0, 50.0)  # yaw centres (0 = side, 90 = front)


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
        rng = _rng(seed, T_CAMERA, i + 1)
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
    rng = _rng(seed, T_TRACK, pid, cam.camid)
    yaw = cam.yaw + rng.uniform(-cam.yaw_spread, cam.yaw_spread)
    if rng.random() < cam.two_way:  # oncoming traffic: the camera sees the other end and side
        yaw += 180.0
    return Track(pid=pid, camid=cam.camid, frames=int(rng.integers(frames[0], frames[1] + 1)),
                 start_frame=int(rng.integers(1, 900000)),
                 foggy=bool(rng.random() < cam.fog_prob), yaw=float(yaw), yaw_step=float(rng.uniform(-6, 6)),
                 pitch=float(cam.pitch + rng.uniform(-4, 4)), distance=float(rng.uniform(1.6, 2.6)),
                 lane=float(rng.uniform(-.5, .5)), light=float(rng.uniform(.9, 1.1)))


# ---------------------------------------------------------------------------------------------
# Textures. Each is premultiplied BGR float32 (zero outside the face) plus a [0, 1] mask, drawn at
# PX_PER_M pixels per metre; faces are then warped into the image by their plane homography.

PX_PER_M = 40.0


def _bgr(rgb: Sequence[float]) -> Tuple[float, float, float]:
    return float(rgb[2]), float(rgb[1]), float(rgb[0])


@dataclass
class Look:
    """An identity resolved to concrete geometry and colours."""

    ident: Identity
    vtype: VehicleType
    profile: np.ndarray  # (n, 2) metres after the size jitter
    roles: Tuple[str, ...]
    sx: float
    sy: float
    body: Tuple[float, float, float]
    roof: Tuple[float, float, float]
    glass: Tuple[float, float, float]
    trim: Tuple[float, float, float]
    mark: Tuple[float, float, float]
    sticker: Tuple[float, float, float]
    textures: Dict[object, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def length(self) -> float:
        return float(self.profile[:, 0].max())

    @property
    def height(self) -> float:
        return float(self.profile[:, 1].max())

    @property
    def width(self) -> float:
        return self.vtype.width

    def m(self, x: float, y: float) -> Tuple[float, float]:
        """Type-table metres -> jittered metres."""
        return x * self.sx, y * self.sy


def make_look(ident: Identity) -> Look:
    vt = TYPES[ident.vtype]
    prof = np.array([(p[0] * ident.length_scale, p[1] * ident.height_scale) for p in vt.profile], np.float64)
    body = _bgr(COLOUR_FAMILIES[ident.family][2][ident.shade])
    roof = {"none": body, "white": (238.0, 238.0, 238.0), "black": (26.0, 26.0, 26.0)}[TWO_TONE[ident.two_tone]]
    trim = {"black": (30.0, 30.0, 32.0), "body": tuple(.85 * c for c in body), "chrome": (205.0, 205.0, 210.0)}
    return Look(ident=ident, vtype=vt, profile=prof, roles=tuple(p[2] for p in vt.profile),
                sx=ident.length_scale, sy=ident.height_scale, body=body, roof=roof, glass=_bgr(TINTS[ident.tint]),
                trim=trim[TRIMS[ident.trim]], mark=_bgr(MARK_COLOURS[ident.stripe_colour]),
                sticker=_bgr(MARK_COLOURS[ident.sticker_colour]))


def _canvas(w_m: float, h_m: float) -> Tuple[np.ndarray, np.ndarray]:
    w, h = max(2, int(math.ceil(w_m * PX_PER_M))), max(2, int(math.ceil(h_m * PX_PER_M)))
    return np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32)


def _pts(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * 16).astype(np.int32).reshape(-1, 1, 2)


def _fill(img: np.ndarray, points, colour) -> None:
    """Antialiased polygon fill in texture pixels (sub-pixel precision)."""
    cv2.fillPoly(img, [_pts(points)], colour, lineType=cv2.LINE_AA, shift=4)


def _star(cx: float, cy: float, r: float, n: int = 5) -> np.ndarray:
    ang = np.arange(2 * n) * math.pi / n - math.pi / 2
    rad = np.where(np.arange(2 * n) % 2 == 0, r, r * .45)
    return np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)


def _side_texture(look: Look) -> Tuple[np.ndarray, np.ndarray]:
    """The body side (x from the front, y up) with windows, marks and wheels."""
    ident, vt, s = look.ident, look.vtype, PX_PER_M
    L, H = look.length, look.height
    img, mask = _canvas(L, H)

    def tex(x, y):
        return np.array([x * s, (H - y) * s])

    body_pts = np.array([tex(x, y) for x, y in look.profile])
    _fill(mask, body_pts, 1.0)
    _fill(img, body_pts, look.body)
    bottom = float(look.profile[:, 1].min())
    win = [np.array([tex(*look.m(x, y)) for x, y in w]) for w in vt.windows]
    belt = min(look.m(0, p[1])[1] for w in vt.windows for p in w)
    win_top = max(look.m(0, p[1])[1] for w in vt.windows for p in w)
    # Shading: lighter shoulders, darker sills.
    yy = np.linspace(0, 1, img.shape[0], dtype=np.float32)[:, None, None]
    img *= (1.08 - .25 * yy)
    if TWO_TONE[ident.two_tone] != "none":
        region = np.zeros_like(mask)
        cv2.rectangle(region, (0, 0), (img.shape[1], int(tex(0, win_top + .02)[1])), 1.0, -1)
        region *= mask
        img[:] = img * (1 - region[..., None]) + np.array(look.roof, np.float32) * region[..., None]
    # Lower trim / sill.
    y0, y1 = tex(0, bottom + .14)[1], tex(0, bottom)[1]
    cv2.rectangle(img, (0, int(y0)), (img.shape[1], int(y1) + 1), look.trim, -1)
    # Stripes.
    stripe = STRIPES[ident.stripe]
    marks = np.zeros_like(mask)
    if stripe == "belt":
        cv2.rectangle(marks, (0, int(tex(0, belt - .05)[1])), (img.shape[1], int(tex(0, belt - .13)[1])), 1.0, -1)
    elif stripe == "double":
        mid = (belt + bottom) / 2
        for dy in (.06, -.1):
            cv2.rectangle(marks, (0, int(tex(0, mid + dy + .05)[1])), (img.shape[1], int(tex(0, mid + dy)[1])), 1.0, -1)
    elif stripe == "band":
        cv2.rectangle(marks, (0, int(tex(0, bottom + .42)[1])), (img.shape[1], int(tex(0, bottom + .16)[1])), 1.0, -1)
    elif stripe == "slash":
        x0, x1 = .25 * L, .8 * L
        _fill(marks, np.array([tex(x0, bottom + .15), tex(x0 + .5, bottom + .15), tex(x1, belt - .05),
                               tex(x1 - .5, belt - .05)]), 1.0)
    elif stripe == "checker":
        step = .22
        for k, x in enumerate(np.arange(0, L, step)):
            y = belt - .08 - (step / 2 if k % 2 else 0)
            cv2.rectangle(marks, tuple(tex(x, y).astype(int)), tuple(tex(x + step, y - step / 2).astype(int)), 1.0, -1)
    marks *= mask
    img[:] = img * (1 - marks[..., None]) + np.array(look.mark, np.float32) * marks[..., None]
    # Windows, pillars (body colour) and door seams.
    for w in win:
        _fill(img, w, look.glass)
        grad = np.linspace(1.25, .9, img.shape[0], dtype=np.float32)[:, None]
        wm = np.zeros_like(mask)
        _fill(wm, w, 1.0)
        img *= (1 + (grad - 1) * wm)[..., None]
    pw = .07 * s
    for px in vt.pillars:
        x = look.m(px, 0)[0] * s
        cv2.rectangle(img, (int(x - pw), int(tex(0, win_top + .05)[1])), (int(x + pw), int(tex(0, belt - .02)[1])),
                      tuple(.8 * c for c in (look.roof if TWO_TONE[ident.two_tone] != "none" else look.body)), -1)
        cv2.line(img, (int(x), int(tex(0, belt)[1])), (int(x), int(tex(0, bottom + .16)[1])), (25, 25, 25), 1,
                 cv2.LINE_AA)
    # Sticker.
    kind = STICKERS[ident.sticker]
    if kind != "none":
        wx = [p[0] for w in vt.windows for p in w]
        span0, span1 = look.m(min(wx), 0)[0], look.m(max(wx), 0)[0]
        big = 2.2 if vt.name in ("bus", "truck") else 1.0
        pos = STICKER_POSITIONS[ident.sticker_pos]
        cx = {"front_door": span0 + .3 * (span1 - span0), "rear_door": span0 + .7 * (span1 - span0),
              "quarter": .5 * (span1 + L)}[pos]
        if vt.name == "truck":
            cx = {"front_door": .45 * L, "rear_door": .65 * L, "quarter": .85 * L}[pos]
        cy = (belt + bottom) / 2 if vt.name != "truck" else 1.9
        r = ident.sticker_size * big / 2 * s
        c = tex(cx, cy)
        col = look.sticker
        if kind == "circle":
            cv2.circle(img, tuple(c.astype(int)), int(r), col, -1, cv2.LINE_AA)
        elif kind == "ring":
            cv2.circle(img, tuple(c.astype(int)), int(r * .85), col, max(2, int(r * .35)), cv2.LINE_AA)
        elif kind == "square":
            _fill(img, c + np.array([[-r, -r], [r, -r], [r, r], [-r, r]]) * .85, col)
        elif kind == "diamond":
            _fill(img, c + np.array([[0, -r], [r, 0], [0, r], [-r, 0]]) * 1.1, col)
        elif kind == "triangle":
            _fill(img, c + np.array([[0, -r], [r, r * .8], [-r, r * .8]]), col)
        elif kind == "star":
            _fill(img, _star(c[0], c[1], r * 1.2), col)
        elif kind == "number":
            digit = str(ident.pid * 7 % 10)
            scale = r / 11.0
            (tw, th), _ = cv2.getTextSize(digit, cv2.FONT_HERSHEY_SIMPLEX, scale, max(2, int(scale * 3)))
            glyph = np.zeros(mask.shape, np.uint8)  # putText draws on 8-bit images only
            cv2.putText(glyph, digit, (int(c[0] - tw / 2), int(c[1] + th / 2)), cv2.FONT_HERSHEY_SIMPLEX, scale, 255,
                        max(2, int(scale * 3)), cv2.LINE_AA)
            alpha = glyph.astype(np.float32)[..., None] / 255.0
            img[:] = img * (1 - alpha) + np.array(col, np.float32) * alpha
    # Lights visible from the side.
    cv2.rectangle(img, tuple(tex(0, look.profile[1][1] - .05).astype(int)),
                  tuple(tex(.12, look.profile[1][1] - .25).astype(int)), (200, 235, 245), -1)
    rear_top = look.profile[-2][1]
    cv2.rectangle(img, tuple(tex(L - .1, rear_top - .08).astype(int)), tuple(tex(L, rear_top - .3).astype(int)),
                  (30, 30, 200), -1)
    # Wheels: arch, tyre, rim with its style, hub.
    rim_col = _bgr(RIM_COLOURS[ident.rim_colour])
    style = RIM_STYLES[ident.rim_style]
    for ax in vt.axles:
        r = vt.wheel_r * s
        c = tex(look.m(ax, 0)[0], vt.wheel_r)
        ci = tuple(c.astype(int))
        cv2.circle(img, ci, int(r * 1.12), (18, 18, 18), -1, cv2.LINE_AA)
        cv2.circle(mask, ci, int(r), 1.0, -1, cv2.LINE_AA)
        cv2.circle(img, ci, int(r), (22, 22, 24), -1, cv2.LINE_AA)
        rr = r * .62
        if style == "steel":
            cv2.circle(img, ci, int(rr), (50, 50, 54), -1, cv2.LINE_AA)
            for k in range(6):
                a = k * math.pi / 3
                cv2.circle(img, (int(c[0] + .6 * rr * math.cos(a)), int(c[1] + .6 * rr * math.sin(a))),
                           max(1, int(rr * .15)), rim_col, -1, cv2.LINE_AA)
            continue
        cv2.circle(img, ci, int(rr), rim_col, -1, cv2.LINE_AA)
        spokes = {"disc": 0, "spoke5": 5, "spoke6": 6, "multi": 10}[style]
        if spokes:
            cv2.circle(img, ci, int(rr * .85), (28, 28, 30), -1, cv2.LINE_AA)
            for k in range(spokes):
                a = k * 2 * math.pi / spokes
                cv2.line(img, ci, (int(c[0] + rr * .85 * math.cos(a)), int(c[1] + rr * .85 * math.sin(a))), rim_col,
                         max(1, int(rr * (.22 if spokes < 8 else .1))), cv2.LINE_AA)
        cv2.circle(img, ci, max(1, int(rr * .2)), (60, 60, 64), -1, cv2.LINE_AA)
    img *= mask[..., None]
    return img, mask


def _end_texture(look: Look, w_m: float, h_m: float, front: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Front or rear face: bumper, lights, grille / tailgate, plate, windscreen on tall ends."""
    ident, vt, s = look.ident, look.vtype, PX_PER_M
    img, mask = _canvas(w_m, h_m)
    h, w = mask.shape
    mask[:] = 1.0
    img[:] = look.body
    glass_frac = vt.front_glass if front else vt.rear_glass
    top = 0
    if glass_frac:
        g = int(h * glass_frac)
        cv2.rectangle(img, (int(.06 * w), int(.04 * h)), (int(.94 * w), g), look.glass, -1)
        top = g
    low = h - top
    cv2.rectangle(img, (0, int(h - .22 * low)), (w, h), look.trim, -1)  # bumper
    plate = _bgr(PLATES[ident.plate])
    pw, ph = .52 * s, .13 * s
    cv2.rectangle(img, (int(w / 2 - pw / 2), int(h - .2 * low - ph)), (int(w / 2 + pw / 2), int(h - .2 * low)),
                  plate, -1)
    ly0, ly1 = top + .12 * low, top + .42 * low
    if front:
        cv2.rectangle(img, (int(.3 * w), int(ly0)), (int(.7 * w), int(top + .62 * low)), (30, 30, 32), -1)  # grille
        style = HEADLIGHTS[ident.headlight]
        for side in (0, 1):
            xc = .14 * w if side == 0 else .86 * w
            if style == "round":
                cv2.circle(img, (int(xc), int((ly0 + ly1) / 2)), int(.09 * w), (225, 245, 250), -1, cv2.LINE_AA)
            elif style == "rect":
                cv2.rectangle(img, (int(xc - .1 * w), int(ly0)), (int(xc + .1 * w), int(ly1)), (225, 245, 250), -1)
            else:
                cv2.rectangle(img, (int(xc - .13 * w), int(ly0)), (int(xc + .13 * w), int(ly0 + .1 * low)),
                              (225, 245, 250), -1)
    else:
        style = TAILLIGHTS[ident.taillight]
        red = (30, 30, 205)
        if style == "bar":
            cv2.rectangle(img, (int(.06 * w), int(ly0)), (int(.94 * w), int(ly0 + .1 * low)), red, -1)
        for side in (0, 1):
            x0 = .05 * w if side == 0 else .79 * w
            if style == "blocks":
                cv2.rectangle(img, (int(x0), int(ly0)), (int(x0 + .16 * w), int(ly1)), red, -1)
            elif style == "tall":
                cv2.rectangle(img, (int(x0 + .04 * w), int(ly0 - .1 * low)), (int(x0 + .12 * w), int(ly1 + .2 * low)),
                              red, -1)
        if vt.name in ("truck", "van", "bus"):
            cv2.line(img, (w // 2, top), (w // 2, int(h - .22 * low)), (40, 40, 40), 1, cv2.LINE_AA)
    if STRIPES[ident.stripe] == "center":
        for dx in (-.12, .06):
            cv2.rectangle(img, (int(w / 2 + dx * s), top), (int(w / 2 + (dx + .06) * s), int(h - .22 * low)),
                          look.mark, -1)
    return img, mask


def _top_texture(look: Look, w_m: float, h_m: float, role: str) -> Tuple[np.ndarray, np.ndarray]:
    """Hood, roof, trunk, windscreen, pickup bed or plain body panel (x across, y along the edge)."""
    ident, s = look.ident, PX_PER_M
    img, mask = _canvas(w_m, h_m)
    h, w = mask.shape
    mask[:] = 1.0
    if role == "glass":
        img[:] = look.body
        cv2.rectangle(img, (int(.06 * w), int(.06 * h)), (int(.94 * w), int(.94 * h)), look.glass, -1)
        grad = np.linspace(1.3, .85, h, dtype=np.float32)[:, None, None]
        img[int(.06 * h):int(.94 * h), int(.06 * w):int(.94 * w)] *= grad[int(.06 * h):int(.94 * h)]
        return img, mask
    img[:] = look.roof if role == "roof" else look.body
    if role == "bed":
        cv2.rectangle(img, (int(.08 * w), int(.05 * h)), (int(.92 * w), int(.95 * h)), (45, 45, 48), -1)
    if role == "roof" and ROOF_GEAR[ident.roof] == "sunroof":
        cv2.rectangle(img, (int(.25 * w), int(.2 * h)), (int(.75 * w), int(.55 * h)), (22, 22, 26), -1)
    if STRIPES[ident.stripe] == "center" and role in ("hood", "roof", "trunk", "body"):
        for dx in (-.12, .06):
            cv2.rectangle(img, (int(w / 2 + dx * s), 0), (int(w / 2 + (dx + .06) * s), h), look.mark, -1)
    return img, mask


# ---------------------------------------------------------------------------------------------
# Camera geometry and rendering.


@dataclass
class View:
    """Pinhole camera looking at the vehicle, plus the 2-D transform from normalised image
    coordinates to canvas pixels."""

    R: np.ndarray  # rows: image right, image down, forward
    P: np.ndarray  # camera centre
    M: np.ndarray  # 3x3 affine: normalised image -> canvas pixels

    def project(self, pts: np.ndarray) -> np.ndarray:
        c = (np.asarray(pts, np.float64) - self.P) @ self.R.T
        h = c @ self.M.T
        return h[:, :2] / h[:, 2:3]

    def plane(self, origin, ax, ay) -> np.ndarray:
        """Homography from texture pixels (x, y) of the plane origin + x*ax + y*ay to canvas pixels."""
        basis = np.stack([self.R @ np.asarray(ax, float), self.R @ np.asarray(ay, float),
                          self.R @ (np.asarray(origin, float) - self.P)], 1)
        return self.M @ basis


def _look_at(yaw_deg: float, pitch_deg: float, dist: float, target: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    offset = np.array([-math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    P = target + dist * offset
    f = -offset
    r = np.cross(f, [0.0, 1.0, 0.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    return np.stack([r, -u, f]), P


def _faces(look: Look):
    """(key, origin, ax, ay, normal, texture size in metres, role) for every face of the body."""
    L, H, W, s = look.length, look.height, look.width, PX_PER_M
    x0 = -L / 2
    faces = [("side", (x0, H, W / 2), (1 / s, 0, 0), (0, -1 / s, 0), (0, 0, 1), "side"),
             ("side", (x0, H, -W / 2), (1 / s, 0, 0), (0, -1 / s, 0), (0, 0, -1), "side")]
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
        faces.append((i, (start[0] + x0, start[1], -W / 2), (0, 0, 1 / s), (along[0], along[1], 0), normal, role))
    return faces


def _texture(look: Look, key, role: str, w_m: float, h_m: float):
    if key not in look.textures:
        if role == "side":
            look.textures[key] = _side_texture(look)
        elif role in ("front", "rear"):
            look.textures[key] = _end_texture(look, w_m, h_m, front=role == "front")
        else:
            look.textures[key] = _top_texture(look, w_m, h_m, role)
    return look.textures[key]


def _composite(canvas: np.ndarray, vmask: Optional[np.ndarray], tex: np.ndarray, tmask: np.ndarray,
               H: np.ndarray, shade: float) -> None:
    """Warp a premultiplied texture into ``canvas`` (in place) through homography ``H``."""
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
    if vmask is not None:
        np.maximum(vmask[y0:y1, x0:x1], wm, out=vmask[y0:y1, x0:x1])


GROUND_PX_PER_M = 8.0
GROUND_SIZE_M = 32.0


def _ground_texture(seed: int, cam: Camera) -> np.ndarray:
    """Road seen from above (x along the road, period 4 m; z across), one per camera."""
    rng = _rng(seed, T_GROUND, cam.camid)
    n = int(GROUND_SIZE_M * GROUND_PX_PER_M)
    base = rng.uniform(70, 125)
    tint = rng.uniform(-8, 8, 3)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (n, n)).astype(np.float32), (0, 0), 1.5)
    img = (base + tint)[None, None, :] + 14 * noise[..., None]
    img = img.astype(np.float32)

    def row(z):  # z in metres (centre 0) -> texture row
        return int((z + GROUND_SIZE_M / 2) * GROUND_PX_PER_M)

    road_l, road_r = -1.75 - 3.5 * int(rng.integers(0, 3)), 1.75 + 3.5 * int(rng.integers(0, 3))
    verge = _bgr([(150, 150, 146), (70, 120, 60), (140, 120, 90)][int(rng.integers(3))])
    img[:row(road_l)] = np.array(verge, np.float32) + 10 * noise[:row(road_l), :, None]
    img[row(road_r):] = np.array(verge, np.float32) + 10 * noise[row(road_r):, :, None]
    line = _bgr((225, 225, 220)) if rng.random() < .7 else _bgr((225, 190, 50))
    for z in np.arange(road_l, road_r + 1e-6, 3.5):
        r = row(z)
        if abs(z - road_l) < 1e-6 or abs(z - road_r) < 1e-6:
            cv2.rectangle(img, (0, r - 1), (n, r + 1), line, -1)
        else:
            for x in range(0, n, int(4 * GROUND_PX_PER_M)):
                cv2.rectangle(img, (x, r - 1), (x + int(2 * GROUND_PX_PER_M), r + 1), line, -1)
    for _ in range(int(rng.integers(2, 7))):  # stains and patches
        c = (int(rng.integers(n)), int(rng.integers(n)))
        axes = (int(rng.integers(6, 30)), int(rng.integers(4, 16)))
        cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360, tuple(float(base * .75) for _ in range(3)), -1)
    return img


class _Renderer:
    """Renders frames; caches per-camera ground textures (one instance per worker process)."""

    def __init__(self, seed: int, cameras: Sequence[Camera], size: Tuple[int, int]):
        self.seed, self.cameras, self.size = seed, {c.camid: c for c in cameras}, size
        self._ground: Dict[int, np.ndarray] = {}

    def ground(self, cam: Camera) -> np.ndarray:
        if cam.camid not in self._ground:
            self._ground[cam.camid] = _ground_texture(self.seed, cam)
        return self._ground[cam.camid]

    def frame(self, look: Look, track: Track, k: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """Scene radiance (uint8 BGR at output size) and fog depth map (float32 in [0, 1]) of frame ``k``."""
        cam = self.cameras[track.camid]
        out_h, out_w = self.size
        ch, cw = 2 * out_h, 2 * out_w  # 2x supersampling
        L, Hh, W = look.length, look.height, look.width
        yaw = track.yaw + k * track.yaw_step + rng.uniform(-1.5, 1.5)
        target = np.array([0.0, .45 * Hh, 0.0])
        dist = track.distance * max(L, 2.5 * Hh) + 3.0
        R, P = _look_at(yaw, track.pitch + rng.uniform(-1, 1), dist, target)
        view = View(R=R, P=P, M=np.eye(3))
        # Crop: the vehicle's box plus a margin, jittered per frame.
        box = np.array([(x - L / 2, y, z) for x, y in look.profile for z in (-W / 2, W / 2)]
                       + [(x, 0.0, z) for x in (-L / 2, L / 2) for z in (-W / 2, W / 2)]
                       + [(x, Hh + .45, 0.0) for x in (-L / 4, L / 4)])
        xy = view.project(box)
        lo, hi = xy.min(0), xy.max(0)
        bw, bh = (hi - lo) * (1 + 2 * (cam.margin + rng.uniform(0, .04)))
        # Like a detector box resized by a trainer: halfway (geometrically) to the output aspect,
        # the rest is stretched.
        grow = math.sqrt((out_w / out_h) / (bw / bh))
        bw, bh = bw * max(1.0, grow), bh / min(1.0, grow)
        centre = (lo + hi) / 2 + rng.uniform(-.04, .04, 2) * (hi - lo)
        sx, sy = cw / bw, ch / bh
        view.M = np.array([[sx, 0, cw / 2 - sx * centre[0]], [0, sy, ch / 2 - sy * centre[1]], [0, 0, 1]])
        # Ground (the road moves under the vehicle from frame to frame), then sky above the horizon.
        shift = (k * 1.3 + rng.uniform(0, 4)) % 4.0
        gs = 1 / GROUND_PX_PER_M
        Hg = view.plane((-GROUND_SIZE_M / 2 + shift, 0, -GROUND_SIZE_M / 2 + track.lane), (gs, 0, 0), (0, 0, gs))
        canvas = cv2.warpPerspective(self.ground(cam), Hg, (cw, ch), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_WRAP)
        fwd = R[2] * np.array([1, 0, 1])
        fwd /= np.linalg.norm(fwd)
        horizon_row = float((view.M @ np.array([(R[0] @ fwd) / (R[2] @ fwd), (R[1] @ fwd) / (R[2] @ fwd), 1]))[1])
        sky_rows = int(min(ch, max(0, math.ceil(horizon_row + 1))))
        if sky_rows:
            grad = np.linspace(.85, 1.05, sky_rows, dtype=np.float32)[:, None, None]
            canvas[:sky_rows] = np.array(cam.sky, np.float32) * grad
        # Soft shadow under the car, offset away from the sun.
        sun = np.array(cam.sun)
        off = -sun[[0, 2]] / max(sun[1], .3) * .4
        foot = np.array([(x + off[0], 0.0, z + off[1]) for x, z in
                         ((-L / 2 - .15, -W / 2 - .1), (L / 2 + .15, -W / 2 - .1), (L / 2 + .15, W / 2 + .1),
                          (-L / 2 - .15, W / 2 + .1))])
        shadow = np.zeros((ch, cw), np.float32)
        cv2.fillPoly(shadow, [_pts(view.project(foot))], 1.0, lineType=cv2.LINE_AA, shift=4)
        shadow = cv2.GaussianBlur(shadow, (0, 0), 2.5)
        canvas *= (1 - .55 * shadow)[..., None]
        # Body faces, back to front.
        vmask = np.zeros((ch, cw), np.float32)
        faces = []
        for key, origin, ax, ay, normal, role in _faces(look):
            nv = np.asarray(normal)
            if nv @ (P - np.asarray(origin)) <= 0:
                continue
            if role == "side":
                w_m, h_m = L, Hh
            else:
                w_m = W
                i = key
                h_m = float(np.hypot(*(look.profile[(i + 1) % len(look.profile)] - look.profile[i])))
            centre3 = np.asarray(origin) + .5 * w_m * PX_PER_M * np.asarray(ax) + .5 * h_m * PX_PER_M * np.asarray(ay)
            faces.append((float(np.linalg.norm(centre3 - P)), key, origin, ax, ay, nv, role, w_m, h_m))
        faces.sort(key=lambda f: -f[0])
        for _, key, origin, ax, ay, nv, role, w_m, h_m in faces:
            tex, tmask = _texture(look, key, role, w_m, h_m)
            shade = track.light * (cam.ambient + (1 - cam.ambient) * max(0.0, float(nv @ sun)))
            _composite(canvas, vmask, tex, tmask, view.plane(origin, ax, ay), shade)
        self._roof_gear(canvas, vmask, look, view, P, cam, track)
        clear = cv2.resize(canvas, (out_w, out_h), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(vmask, (out_w, out_h), interpolation=cv2.INTER_AREA)
        clear = np.clip(clear + .5, 0, 255).astype(np.uint8)
        # Fog depth: ground-plane prior of this camera, the vehicle at the depth of its ground contact.
        depth = ground_plane_depth(out_h, out_w, horizon=horizon_row / ch, near=cam.fog_near, far=1.0,
                                   max_distance=cam.fog_far_ratio)
        contact = int(np.clip(view.project(np.zeros((1, 3)))[0, 1] / 2, 0, out_h - 1))
        depth = depth * (1 - mask) + depth[contact, 0] * mask
        return clear, depth

    def _roof_gear(self, canvas, vmask, look: Look, view: View, P, cam: Camera, track: Track) -> None:
        gear = ROOF_GEAR[look.ident.roof]
        if gear in ("none", "sunroof") or look.vtype.name in ("bus", "truck"):
            return
        roofs = [i for i, r in enumerate(look.roles) if r == "roof"]
        i = max(roofs, key=lambda j: abs(look.profile[(j + 1) % len(look.profile)][0] - look.profile[j][0]))
        xa, xb = sorted((look.profile[i][0], look.profile[(i + 1) % len(look.profile)][0]))
        y, x0, W = look.profile[i][1], -look.length / 2, look.width
        xa, xb = xa + x0 + .1, xb + x0 - .1
        px_per_m = float(np.linalg.norm(view.project(np.array([[0, y, 0], [1, y, 0]]))[1]
                                        - view.project(np.array([[0, y, 0]]))[0]))
        thick = max(1, int(round(.06 * px_per_m)))
        col = _bgr(MARK_COLOURS[look.ident.stripe_colour]) if gear == "box" else (30.0, 30.0, 32.0)

        def seg(a, b, c=(30.0, 30.0, 32.0), t=thick):
            p = view.project(np.array([a, b]))
            cv2.line(canvas, tuple(np.round(p[0]).astype(int)), tuple(np.round(p[1]).astype(int)), c, t, cv2.LINE_AA)
            cv2.line(vmask, tuple(np.round(p[0]).astype(int)), tuple(np.round(p[1]).astype(int)), 1.0, t, cv2.LINE_AA)

        if gear in ("rails", "ladder"):
            for z in (-W / 2 + .15, W / 2 - .15):
                seg((xa, y + .1, z), (xb, y + .1, z))
                for x in (xa, xb):
                    seg((x, y, z), (x, y + .1, z))
            if gear == "ladder":
                for x in np.linspace(xa, xb, 7):
                    seg((x, y + .1, -W / 2 + .15), (x, y + .1, W / 2 - .15), (150.0, 150.0, 155.0))
        elif gear == "crossbars":
            for x in (xa + .25 * (xb - xa), xa + .75 * (xb - xa)):
                seg((x, y + .08, -W / 2 + .05), (x, y + .08, W / 2 - .05), t=thick + 1)
        else:  # a cuboid: roof box (mark colour) or taxi sign (yellow / white)
            if gear == "sign":
                col = _bgr((240, 200, 40)) if look.ident.plate == 0 else _bgr((240, 240, 240))
                cx = (xa + xb) / 2
                bx0, bx1, hz, bh = cx - .25, cx + .25, .2, .25
            else:
                bx0, bx1, hz, bh = xa + .15, xb - .15, .33 * W, .3
            corners = np.array([(x, yy, z) for x in (bx0, bx1) for yy in (y, y + bh) for z in (-hz, hz)])
            # corner index = 4·(x is bx1) + 2·(y is the top) + (z is +hz)
            quads = (((0, 1, 3, 2), (-1, 0, 0)), ((4, 5, 7, 6), (1, 0, 0)), ((0, 2, 6, 4), (0, 0, -1)),
                     ((1, 3, 7, 5), (0, 0, 1)), ((2, 3, 7, 6), (0, 1, 0)))
            sun = np.array(cam.sun)
            for idx, nrm in quads:
                nrm = np.array(nrm, float)
                if nrm @ (P - corners[idx[0]]) <= 0:
                    continue
                shade = track.light * (cam.ambient + (1 - cam.ambient) * max(0.0, float(nrm @ sun)))
                poly = _pts(view.project(corners[list(idx)]))
                cv2.fillPoly(canvas, [poly], tuple(c * shade for c in col), lineType=cv2.LINE_AA, shift=4)
                cv2.fillPoly(vmask, [poly], 1.0, lineType=cv2.LINE_AA, shift=4)


def _uneven_beta(rng: np.random.Generator, beta: float, shape: Tuple[int, int]) -> np.ndarray:
    """Patchy fog for the 'real' view: β modulated by smooth noise in [0.6, 1.4]."""
    small = rng.uniform(0, 1, (4, 4)).astype(np.float32)
    field_ = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(beta * (.6 + .8 * field_), 0, None).astype(np.float32)


def _camera_response(img: np.ndarray, cam: Camera, noise: np.ndarray) -> np.ndarray:
    """Sensor of camera ``cam``: colour cast, saturation, gamma, low resolution, blur, noise."""
    x = img.astype(np.float32) / 255.0
    x *= np.array(cam.gains, np.float32) * cam.brightness
    grey = x.mean(axis=2, keepdims=True)
    x = np.clip(grey + cam.saturation * (x - grey), 0, 1) ** cam.gamma
    h, w = x.shape[:2]
    if cam.resolution < .98:
        small = cv2.resize(x, (max(8, int(w * cam.resolution)), max(8, int(h * cam.resolution))),
                           interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if cam.blur > .3:
        x = cv2.GaussianBlur(x, (0, 0), cam.blur)
    return np.clip(x * 255.0 + noise + .5, 0, 255).astype(np.uint8)


def _encode(img: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed to write a JPEG")
    return buf.tobytes()


# ---------------------------------------------------------------------------------------------
# Planning: which frames exist, where they go and what they are called.


@dataclass
class Shot:
    """One rendered frame and the files it is written to (paths relative to the output folder)."""

    camid: int
    frame: int  # index within the track
    frame_no: int
    foggy: bool  # which twin the AIC view uses
    aic: Optional[str] = None
    syn: Optional[str] = None  # FVRID_syn name (under <split>_clear and <split>_foggy)
    syn_split: Optional[str] = None
    real: Optional[str] = None  # FVRID_real relative path


@dataclass
class _Group:
    """Identities of one view (AIC + FVRID_syn, or FVRID_real) split into train / test."""

    train: List[int]
    test: List[int]


# Sightings per identity: (min, max) cameras and (min, max) frames per track. Test identities are
# seen by more cameras in longer tracks, as in AIC20, whose test set has ~55 gallery images per id
# (k-reciprocal re-ranking needs several true matches in a neighbourhood to help).
TRAIN_SIGHTINGS = ((2, 4), (2, 4))
TEST_SIGHTINGS = ((3, 6), (4, 8))


def _sightings(seed: int, pid: int, cameras: Sequence[Camera], test: bool = False) -> List[Track]:
    """The tracks of one vehicle on distinct cameras (fewer if there are fewer cameras)."""
    (lo, hi), frames = TEST_SIGHTINGS if test else TRAIN_SIGHTINGS
    rng = _rng(seed, T_SIGHTINGS, pid)
    k = int(rng.integers(min(lo, len(cameras)), min(hi, len(cameras)) + 1))
    chosen = sorted(int(c) for c in rng.choice(len(cameras), k, replace=False))
    return [make_track(seed, pid, cameras[c], frames) for c in chosen]


def _split_test(seed: int, pid: int, tracks: List[Track]) -> Tuple[List[Track], List[Track], Dict[int, int]]:
    """Query sightings (foggy ones first, at least one sighting left for the gallery) and the
    frame of each query track that becomes the query image."""
    rng = _rng(seed, T_QUERY, pid)
    order = sorted(range(len(tracks)), key=lambda i: (not tracks[i].foggy, rng.random()))
    nq = max(1, len(tracks) // 2)
    query = [tracks[i] for i in sorted(order[:nq])]
    gallery = [tracks[i] for i in sorted(order[nq:])]
    frames = {t.camid: int(rng.integers(t.frames)) for t in query}
    return query, gallery, frames


def _fvrid_name(pid: int, camid: int, frame_no: int) -> str:
    return f"{pid:05d}_c{camid:03d}_{frame_no:06d}_0.jpg"


# ---------------------------------------------------------------------------------------------
# Workers.

_WORKER: Dict[str, object] = {}


def _init_worker(seed: int, ncams: int, size: Tuple[int, int], stage: str) -> None:
    cv2.setNumThreads(1)
    _WORKER.update(seed=seed, stage=stage,
                   renderer=_Renderer(seed, make_cameras(seed, ncams), size))


def _render_identity(job: Tuple[Identity, bool, List[Tuple[Track, List[Shot]]]]) -> int:
    """Render and write every frame of one identity; returns the number of frames."""
    ident, real, tracks = job
    seed, stage, renderer = _WORKER["seed"], _WORKER["stage"], _WORKER["renderer"]
    look = make_look(ident)
    count = 0
    for track, shots in tracks:
        cam = renderer.cameras[track.camid]
        for shot in shots:
            rng = _rng(seed, T_FRAME, ident.pid, track.camid, shot.frame)
            clear, depth = renderer.frame(look, track, shot.frame, rng)
            beta, airlight = sample_fog(rng)
            noise = rng.normal(0, cam.noise, clear.shape).astype(np.float32)
            if real:
                tint = np.clip(airlight * (1 + rng.uniform(-.06, .06, 3)), 0, 1)
                foggy = add_fog(clear, depth, _uneven_beta(rng, beta, depth.shape), tint)
            else:
                foggy = add_fog(clear, depth, beta, airlight)
            foggy_bytes = _encode(_camera_response(foggy, cam, noise), cam.jpeg)
            clear_bytes = None if real else _encode(_camera_response(clear, cam, noise), cam.jpeg)
            outputs = []
            if shot.aic:
                outputs.append((shot.aic, foggy_bytes if shot.foggy else clear_bytes))
            if shot.syn:
                outputs.append((f"fvrid/FVRID_syn/{shot.syn_split}_clear/{shot.syn}", clear_bytes))
                outputs.append((f"fvrid/FVRID_syn/{shot.syn_split}_foggy/{shot.syn}", foggy_bytes))
            if shot.real:
                outputs.append((shot.real, foggy_bytes))
            # Plain writes: everything goes to a private staging folder moved into place at the end.
            for rel, data in outputs:
                with open(os.path.join(stage, rel), "wb") as f:
                    f.write(data)
            count += 1
    return count


# ---------------------------------------------------------------------------------------------
# Label files.

AIC_OUTPUTS = ("image_train", "image_query", "image_test", "name_train.txt", "name_query.txt", "name_test.txt",
               "train_label.xml", "query_label.xml", "test_label.xml", "train_track.txt", "train_track_id.txt",
               "test_track.txt", "test_track_id.txt", "fvrid", "summary.json")


def _write_text(path: str, text: str, encoding: str = "ascii") -> None:
    with atomic_write(path, "w", encoding=encoding, newline="\n") as f:
        f.write(text)


def _label_xml(items: List[Tuple[str, Identity, Shot, float]]) -> str:
    lines = ['<?xml version="1.0" encoding="gb2312"?>', '<TrainingImages Version="1.0">',
             f'<Items number="{len(items)}">']
    for name, ident, shot, yaw in items:
        lines.append(f'<Item imageName="{name}" vehicleID="{ident.pid:04d}" cameraID="c{shot.camid:03d}" '
                     f'colorID="{ident.family + 1}" typeID="{ident.vtype + 1}" orientation="{yaw % 360:.1f}" '
                     f'foggy="{int(shot.foggy)}" />')
    lines += ["</Items>", "</TrainingImages>", ""]
    return "\n".join(lines)


def _track_lines(tracks: List[List[str]], ids: Dict[str, int]) -> Tuple[str, str]:
    names = "".join(" ".join(t) + " \n" for t in tracks)
    idx = "".join(" ".join(str(ids[n]) for n in t) + " \n" for t in tracks)
    return names, idx


# ---------------------------------------------------------------------------------------------
# Entry point.


def generate(out_dir: str, seed: int = 0, ids: int = 240, size: Tuple[int, int] = (96, 128), cameras: int = 6,
             real_ids: Optional[int] = None, workers: int = 1, verbose: bool = False,
             test_ids: Optional[int] = None) -> Dict[str, object]:
    """Generate the benchmark into ``out_dir`` and return the summary (also ``out_dir/summary.json``).

    ``ids`` identities are split into ``test_ids`` test identities (default half) and the rest
    for training (disjoint, as in AIC); ``real_ids`` more
    (default ``max(4, ids // 4)``) make up ``fvrid/FVRID_real``. Rendering runs in ``workers``
    processes; the output does not depend on it. Earlier outputs in ``out_dir`` are replaced only
    once the new dataset is complete.
    """
    start = time.time()
    h, w = (int(v) for v in size)
    real_ids = max(4, ids // 4) if real_ids is None else int(real_ids)
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not 4 <= ids <= 9999:
        raise ValueError(f"ids must be in 4..9999 (train + test), got {ids}")
    n_test = ids // 2 if test_ids is None else int(test_ids)
    if not 2 <= n_test <= ids - 2:
        raise ValueError(f"test_ids must leave at least 2 of the {ids} ids on each side, got {n_test}")
    if not 32 <= h <= 1024 or not 32 <= w <= 1024:
        raise ValueError(f"size must be two integers H W in 32..1024, got {size}")
    if not 2 <= cameras <= 99:
        raise ValueError(f"cameras must be in 2..99 (queries need a match on another camera), got {cameras}")
    if real_ids != 0 and not 2 <= real_ids <= 9999:
        raise ValueError(f"real_ids must be 0 (no FVRID_real view) or in 2..9999, got {real_ids}")
    cams = make_cameras(seed, cameras)
    n_train = ids - n_test
    syn = _Group(list(range(1, n_train + 1)), list(range(n_train + 1, ids + 1)))
    n_real_train = real_ids // 2
    real = _Group(list(range(REAL_PID_BASE + 1, REAL_PID_BASE + n_real_train + 1)),
                  list(range(REAL_PID_BASE + n_real_train + 1, REAL_PID_BASE + real_ids + 1)))
    identities = {i.pid: i for group in (syn.train, syn.test, real.train, real.test)
                  for i in make_identities(seed, group)}

    plan: Dict[int, List[Tuple[Track, List[Shot]]]] = {}

    def shots_for(track: Track, frames: Sequence[int]) -> List[Shot]:
        shots = [Shot(track.camid, k, track.start_frame + 5 * k, track.foggy) for k in frames]
        plan.setdefault(track.pid, []).append((track, shots))
        return shots

    # AIC + FVRID_syn. Train: every frame. Test: one frame per query sighting, gallery tracks whole.
    train_tracks, query_shots, gallery_tracks = [], [], []
    for pid in syn.train:
        for t in _sightings(seed, pid, cams):
            train_tracks.append((pid, shots_for(t, range(t.frames)), t))
    for pid in syn.test:
        q, g, qframe = _split_test(seed, pid, _sightings(seed, pid, cams, test=True))
        for t in q:
            query_shots.append((pid, shots_for(t, [qframe[t.camid]])[0], t))
        for t in g:
            gallery_tracks.append((pid, shots_for(t, range(t.frames)), t))
    order = _rng(seed, T_ORDER, 0)
    train_tracks = [train_tracks[i] for i in order.permutation(len(train_tracks))]
    query_shots = [query_shots[i] for i in order.permutation(len(query_shots))]
    gallery_tracks = [gallery_tracks[i] for i in order.permutation(len(gallery_tracks))]

    labels: Dict[str, List[Tuple[str, Identity, Shot, float]]] = {"train": [], "query": [], "test": []}
    tracks_by_split: Dict[str, List[List[str]]] = {"train": [], "test": []}

    def name_track(split: str, folder: str, fvrid_split: str, pid: int, shots: List[Shot], track: Track) -> List[str]:
        names = []
        for shot in shots:
            name = f"{len(labels[split]) + 1:06d}.jpg"
            shot.aic = f"{folder}/{name}"
            shot.syn, shot.syn_split = _fvrid_name(pid, shot.camid, shot.frame_no), fvrid_split
            labels[split].append((name, identities[pid], shot, track.yaw + shot.frame * track.yaw_step))
            names.append(name)
        return names

    for pid, shots, t in train_tracks:
        tracks_by_split["train"].append(name_track("train", "image_train", "train", pid, shots, t))
    for pid, shot, t in query_shots:
        name_track("query", "image_query", "query", pid, [shot], t)
    for pid, shots, t in gallery_tracks:
        tracks_by_split["test"].append(name_track("test", "image_test", "gallery", pid, shots, t))

    # FVRID_real: other identities, foggy only.
    real_counts = {"train": 0, "query": 0, "gallery": 0}

    def real_shots(split: str, track: Track, frames: Sequence[int]) -> None:
        for shot in shots_for(track, frames):
            shot.foggy = True
            shot.real = f"fvrid/FVRID_real/{split}_foggy/{_fvrid_name(track.pid, shot.camid, shot.frame_no)}"
            real_counts[split] += 1

    for pid in real.train:
        for t in _sightings(seed, pid, cams):
            real_shots("train", t, range(t.frames))
    for pid in real.test:
        q, g, qframe = _split_test(seed, pid, _sightings(seed, pid, cams, test=True))
        for t in q:
            real_shots("query", t, [qframe[t.camid]])
        for t in g:
            real_shots("gallery", t, range(t.frames))

    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    stage = os.path.join(out_dir, f".synth-staging-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        for d in ("image_train", "image_query", "image_test"):
            os.makedirs(os.path.join(stage, d))
        for split in ("train", "query", "gallery"):
            for kind in ("clear", "foggy"):
                os.makedirs(os.path.join(stage, "fvrid", "FVRID_syn", f"{split}_{kind}"))
            if real_ids:
                os.makedirs(os.path.join(stage, "fvrid", "FVRID_real", f"{split}_foggy"))
        jobs = [(identities[pid], pid > REAL_PID_BASE, plan[pid]) for pid in sorted(plan)]
        if workers > 1:
            with multiprocessing.get_context().Pool(workers, _init_worker, (seed, cameras, (h, w), stage)) as pool:
                frames = sum(pool.imap_unordered(_render_identity, jobs, chunksize=4))
        else:
            threads = cv2.getNumThreads()
            _init_worker(seed, cameras, (h, w), stage)
            try:
                frames = sum(_render_identity(job) for job in jobs)
            finally:
                cv2.setNumThreads(threads)

        for split in ("train", "query", "test"):
            names = [item[0] for item in labels[split]]
            _write_text(os.path.join(stage, f"name_{split}.txt"), "".join(n + "\n" for n in names))
            _write_text(os.path.join(stage, f"{split}_label.xml"), _label_xml(labels[split]))
        for split in ("train", "test"):
            index = {item[0]: i + 1 for i, item in enumerate(labels[split])}
            names_txt, ids_txt = _track_lines(tracks_by_split[split], index)
            _write_text(os.path.join(stage, f"{split}_track.txt"), names_txt)
            _write_text(os.path.join(stage, f"{split}_track_id.txt"), ids_txt)

        def foggy_frac(split):
            items = labels[split]
            return round(sum(it[2].foggy for it in items) / max(1, len(items)), 4)

        summary = {
            "seed": seed, "size": [h, w], "cameras": cameras,
            "ids": {"train": len(syn.train), "test": len(syn.test), "real_train": len(real.train),
                    "real_test": len(real.test)},
            "images": {"train": len(labels["train"]), "query": len(labels["query"]), "gallery": len(labels["test"]),
                       "fvrid_syn_pairs": len(labels["train"]) + len(labels["query"]) + len(labels["test"]),
                       "fvrid_real": real_counts, "rendered": frames},
            "tracks": {"train": len(tracks_by_split["train"]), "gallery": len(tracks_by_split["test"])},
            "foggy_fraction": {s: foggy_frac(k) for s, k in (("train", "train"), ("query", "query"),
                                                                  ("gallery", "test"))},
            "cameras_fog_probability": {f"c{c.camid:03d}": round(c.fog_prob, 3) for c in cams},
            "workers": workers,
            "seconds": round(time.time() - start, 2),
        }
        _write_text(os.path.join(stage, "summary.json"), json.dumps(summary, indent=2) + "\n")
        for entry in AIC_OUTPUTS:  # swap in the finished dataset entry by entry
            src, dst = os.path.join(stage, entry), os.path.join(out_dir, entry)
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            elif os.path.lexists(dst):
                os.unlink(dst)
            os.replace(src, dst)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if verbose:
        print(format_summary(summary, out_dir))
    return summary


def format_summary(summary: Dict[str, object], out_dir: str) -> str:
    """The printed summary of a ``generate`` result (``make demo`` prints it from summary.json)."""
    ids, img, fog = summary["ids"], summary["images"], summary["foggy_fraction"]
    real = img["fvrid_real"]
    return "\n".join([
        f"synthetic foggy-vehicle benchmark at {out_dir} (seed {summary['seed']}, {summary['size'][0]}x"
        f"{summary['size'][1]}, {summary['cameras']} cameras)",
        f"  ids      train {ids['train']}  test {ids['test']}  (FVRID_real: train {ids['real_train']}, "
        f"test {ids['real_test']})",
        f"  images   train {img['train']}  query {img['query']}  gallery {img['gallery']}  "
        f"(FVRID_syn pairs {img['fvrid_syn_pairs']}, FVRID_real {real['train']}/{real['query']}/{real['gallery']})",
        f"  foggy    train {fog['train']:.0%}  query {fog['query']:.0%}  gallery {fog['gallery']:.0%}",
        f"  time     {summary['seconds']} s ({summary['workers']} workers, {img['rendered']} frames rendered)",
    ])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (AIC20 layout + fvrid/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ids", type=int, default=240, help="identities, train + test")
    parser.add_argument("--test-ids", type=int, default=None, help="of which test identities (default: half)")
    parser.add_argument("--size", type=int, nargs=2, default=(96, 128), metavar=("H", "W"), help="image size")
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--real-ids", type=int, default=None,
                        help="identities of the FVRID_real view (default max(4, ids // 4); 0 = none)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="rendering processes (the output does not depend on it)")


def run(args: argparse.Namespace) -> int:
    try:
        generate(args.out, seed=args.seed, ids=args.ids, size=tuple(args.size), cameras=args.cameras,
                 real_ids=args.real_ids, workers=max(1, args.workers), verbose=True, test_ids=args.test_ids)
    except ValueError as exc:
        print(f"synth: error: {exc}", file=sys.stderr)
        return 2
    return 0
