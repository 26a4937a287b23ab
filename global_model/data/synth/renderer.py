"""Rendering: a frame of a track as the camera records it (scene, fog, sensor, JPEG bytes).

The scene is drawn at twice the output size under a pinhole camera (road, sky, shadow, body faces
back to front, roof gear) and downsampled. Fog follows the scattering model of ``fog.py`` with a
ground-plane depth map from the camera geometry (the vehicle at its contact depth); the sensor then
applies the camera's colour cast, resolution, blur and noise before JPEG encoding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..fog import add_fog, ground_plane_depth, sample_fog
from .catalogue import ROOF_GEAR, bgr
from .geometry import View, body_faces, composite, look_at
from .look import BGR, Look
from .scene import Camera, Track
from .streams import T_FRAME, stream
from .textures import GROUND_PX_PER_M, GROUND_SIZE_M, PX_PER_M, Texture, face_texture, fixed_point, ground_texture

FaceTextures = Dict[Union[str, int], Texture]


def face_textures(look: Look) -> FaceTextures:
    """The texture of every body face of ``look`` by face key (both sides share one)."""
    textures: FaceTextures = {}
    for face in body_faces(look):
        if face.key not in textures:
            textures[face.key] = face_texture(look, face.role, *face.size)
    return textures


def _lambert(cam: Camera, track: Track, normal: np.ndarray) -> float:
    """Brightness of a surface with ``normal``: ambient plus diffuse sunlight, times the track's light."""
    return track.light * (cam.ambient + (1 - cam.ambient) * max(0.0, float(normal @ np.array(cam.sun))))


def _frame_view(look: Look, track: Track, cam: Camera, k: int, rng: np.random.Generator,
                out_size: Tuple[int, int]) -> View:
    """The camera of frame ``k``: the track's pose with per-frame jitter, cropped like a detector box."""
    out_h, out_w = out_size
    ch, cw = 2 * out_h, 2 * out_w  # 2x supersampling
    L, Hh, W = look.length, look.height, look.width
    yaw = track.yaw + k * track.yaw_step + rng.uniform(-1.5, 1.5)
    target = np.array([0.0, .45 * Hh, 0.0])
    dist = track.distance * max(L, 2.5 * Hh) + 3.0
    R, P = look_at(yaw, track.pitch + rng.uniform(-1, 1), dist, target)
    # Crop: the vehicle's box plus a margin, jittered per frame.
    box = np.array([(x - L / 2, y, z) for x, y in look.profile for z in (-W / 2, W / 2)]
                   + [(x, 0.0, z) for x in (-L / 2, L / 2) for z in (-W / 2, W / 2)]
                   + [(x, Hh + .45, 0.0) for x in (-L / 4, L / 4)])
    xy = View(R=R, P=P, M=np.eye(3)).project(box)
    lo, hi = xy.min(0), xy.max(0)
    bw, bh = (hi - lo) * (1 + 2 * (cam.margin + rng.uniform(0, .04)))
    # Like a detector box resized by a trainer: halfway (geometrically) to the output aspect,
    # the rest is stretched.
    grow = math.sqrt((out_w / out_h) / (bw / bh))
    bw, bh = bw * max(1.0, grow), bh / min(1.0, grow)
    centre = (lo + hi) / 2 + rng.uniform(-.04, .04, 2) * (hi - lo)
    sx, sy = cw / bw, ch / bh
    return View(R=R, P=P, M=np.array([[sx, 0, cw / 2 - sx * centre[0]], [0, sy, ch / 2 - sy * centre[1]], [0, 0, 1]]))


def _horizon_row(view: View) -> float:
    """Canvas row of the horizon (the vanishing line of the ground plane)."""
    R = view.R
    fwd = R[2] * np.array([1, 0, 1])
    fwd /= np.linalg.norm(fwd)
    return float((view.M @ np.array([(R[0] @ fwd) / (R[2] @ fwd), (R[1] @ fwd) / (R[2] @ fwd), 1]))[1])


def _road_and_sky(ground: np.ndarray, view: View, cam: Camera, track: Track, k: int, rng: np.random.Generator,
                  canvas_size: Tuple[int, int], horizon_row: float) -> np.ndarray:
    """The background canvas: the road (moving under the vehicle from frame to frame), sky above the horizon."""
    ch, cw = canvas_size
    shift = (k * 1.3 + rng.uniform(0, 4)) % 4.0
    gs = 1 / GROUND_PX_PER_M
    Hg = view.plane((-GROUND_SIZE_M / 2 + shift, 0, -GROUND_SIZE_M / 2 + track.lane), (gs, 0, 0), (0, 0, gs))
    canvas = cv2.warpPerspective(ground, Hg, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    sky_rows = int(min(ch, max(0, math.ceil(horizon_row + 1))))
    if sky_rows:
        grad = np.linspace(.85, 1.05, sky_rows, dtype=np.float32)[:, None, None]
        canvas[:sky_rows] = np.array(cam.sky, np.float32) * grad
    return canvas


def _paint_shadow(canvas: np.ndarray, view: View, look: Look, cam: Camera) -> None:
    """Soft shadow under the car, offset away from the sun."""
    L, W = look.length, look.width
    sun = np.array(cam.sun)
    off = -sun[[0, 2]] / max(sun[1], .3) * .4
    foot = np.array([(x + off[0], 0.0, z + off[1]) for x, z in
                     ((-L / 2 - .15, -W / 2 - .1), (L / 2 + .15, -W / 2 - .1), (L / 2 + .15, W / 2 + .1),
                      (-L / 2 - .15, W / 2 + .1))])
    shadow = np.zeros(canvas.shape[:2], np.float32)
    cv2.fillPoly(shadow, [fixed_point(view.project(foot))], 1.0, lineType=cv2.LINE_AA, shift=4)
    shadow = cv2.GaussianBlur(shadow, (0, 0), 2.5)
    canvas *= (1 - .55 * shadow)[..., None]


def _paint_body(canvas: np.ndarray, vmask: np.ndarray, look: Look, textures: FaceTextures, view: View,
                cam: Camera, track: Track) -> None:
    """The faces turned towards the camera, farthest first."""
    P = view.P
    visible = []
    for face in body_faces(look):
        normal = np.asarray(face.normal)
        if normal @ (P - np.asarray(face.origin)) <= 0:
            continue
        w_m, h_m = face.size
        centre = (np.asarray(face.origin) + .5 * w_m * PX_PER_M * np.asarray(face.ax)
                  + .5 * h_m * PX_PER_M * np.asarray(face.ay))
        visible.append((float(np.linalg.norm(centre - P)), face, normal))
    visible.sort(key=lambda v: -v[0])
    for _, face, normal in visible:
        tex, tmask = textures[face.key]
        composite(canvas, vmask, tex, tmask, view.plane(face.origin, face.ax, face.ay), _lambert(cam, track, normal))


@dataclass(frozen=True)
class _Roof:
    """Where roof gear sits: the longest roof edge, inset 10 cm at each end (world metres)."""

    x0: float
    x1: float
    y: float
    width: float
    thick: int  # line thickness in canvas pixels (6 cm)


def _roof(look: Look, view: View) -> _Roof:
    prof, n = look.profile, len(look.profile)
    roofs = [i for i, r in enumerate(look.roles) if r == "roof"]
    i = max(roofs, key=lambda j: abs(prof[(j + 1) % n][0] - prof[j][0]))
    xa, xb = sorted((prof[i][0], prof[(i + 1) % n][0]))
    y, x0 = prof[i][1], -look.length / 2
    px_per_m = float(np.linalg.norm(view.project(np.array([[0, y, 0], [1, y, 0]]))[1]
                                    - view.project(np.array([[0, y, 0]]))[0]))
    return _Roof(xa + x0 + .1, xb + x0 - .1, y, look.width, max(1, int(round(.06 * px_per_m))))


def _line3d(canvas: np.ndarray, vmask: np.ndarray, view: View, a, b, thick: int,
            colour: BGR = (30.0, 30.0, 32.0)) -> None:
    """A world-space segment from ``a`` to ``b`` (dark by default), also marked in ``vmask``."""
    p = view.project(np.array([a, b]))
    cv2.line(canvas, tuple(np.round(p[0]).astype(int)), tuple(np.round(p[1]).astype(int)), colour, thick, cv2.LINE_AA)
    cv2.line(vmask, tuple(np.round(p[0]).astype(int)), tuple(np.round(p[1]).astype(int)), 1.0, thick, cv2.LINE_AA)


def _roof_rails(canvas: np.ndarray, vmask: np.ndarray, view: View, roof: _Roof, ladder: bool) -> None:
    """Two rails on posts along the roof; a ladder adds rungs across them."""
    xa, xb, y, W, t = roof.x0, roof.x1, roof.y, roof.width, roof.thick
    for z in (-W / 2 + .15, W / 2 - .15):
        _line3d(canvas, vmask, view, (xa, y + .1, z), (xb, y + .1, z), t)
        for x in (xa, xb):
            _line3d(canvas, vmask, view, (x, y, z), (x, y + .1, z), t)
    if ladder:
        for x in np.linspace(xa, xb, 7):
            _line3d(canvas, vmask, view, (x, y + .1, -W / 2 + .15), (x, y + .1, W / 2 - .15), t, (150.0, 150.0, 155.0))


def _roof_crossbars(canvas: np.ndarray, vmask: np.ndarray, view: View, roof: _Roof) -> None:
    xa, xb, y, W = roof.x0, roof.x1, roof.y, roof.width
    for x in (xa + .25 * (xb - xa), xa + .75 * (xb - xa)):
        _line3d(canvas, vmask, view, (x, y + .08, -W / 2 + .05), (x, y + .08, W / 2 - .05), roof.thick + 1)


def _roof_cuboid(canvas: np.ndarray, vmask: np.ndarray, view: View, roof: _Roof, look: Look, cam: Camera,
                 track: Track, sign: bool) -> None:
    """A roof box (stripe colour) or a taxi sign (yellow, or white with a yellow plate), lit like the body."""
    xa, xb, y, W = roof.x0, roof.x1, roof.y, roof.width
    if sign:
        col = bgr((240, 200, 40)) if look.identity.plate == 0 else bgr((240, 240, 240))
        cx = (xa + xb) / 2
        bx0, bx1, hz, bh = cx - .25, cx + .25, .2, .25
    else:
        col = look.stripe_colour
        bx0, bx1, hz, bh = xa + .15, xb - .15, .33 * W, .3
    corners = np.array([(x, yy, z) for x in (bx0, bx1) for yy in (y, y + bh) for z in (-hz, hz)])
    # corner index = 4·(x is bx1) + 2·(y is the top) + (z is +hz)
    quads = (((0, 1, 3, 2), (-1, 0, 0)), ((4, 5, 7, 6), (1, 0, 0)), ((0, 2, 6, 4), (0, 0, -1)),
             ((1, 3, 7, 5), (0, 0, 1)), ((2, 3, 7, 6), (0, 1, 0)))
    for idx, nrm in quads:
        nrm = np.array(nrm, float)
        if nrm @ (view.P - corners[idx[0]]) <= 0:
            continue
        shade = _lambert(cam, track, nrm)
        poly = fixed_point(view.project(corners[list(idx)]))
        cv2.fillPoly(canvas, [poly], tuple(c * shade for c in col), lineType=cv2.LINE_AA, shift=4)
        cv2.fillPoly(vmask, [poly], 1.0, lineType=cv2.LINE_AA, shift=4)


def _paint_roof_gear(canvas: np.ndarray, vmask: np.ndarray, look: Look, view: View, cam: Camera,
                     track: Track) -> None:
    gear = ROOF_GEAR[look.identity.roof]
    if gear in ("none", "sunroof") or look.vehicle_type.name in ("bus", "truck"):
        return
    roof = _roof(look, view)
    if gear in ("rails", "ladder"):
        _roof_rails(canvas, vmask, view, roof, ladder=gear == "ladder")
    elif gear == "crossbars":
        _roof_crossbars(canvas, vmask, view, roof)
    else:
        _roof_cuboid(canvas, vmask, view, roof, look, cam, track, sign=gear == "sign")


def _fog_depth(view: View, mask: np.ndarray, cam: Camera, horizon_row: float) -> np.ndarray:
    """Fog depth: the camera's ground-plane prior, the vehicle (``mask``) at the depth of its ground contact."""
    out_h, out_w = mask.shape
    depth = ground_plane_depth(out_h, out_w, horizon=horizon_row / (2 * out_h), near=cam.fog_near, far=1.0,
                               max_distance=cam.fog_far_ratio)
    contact = int(np.clip(view.project(np.zeros((1, 3)))[0, 1] / 2, 0, out_h - 1))
    return depth * (1 - mask) + depth[contact, 0] * mask


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


def _encode_jpeg(img: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed to write a JPEG")
    return buf.tobytes()


class Renderer:
    """Renders frames of one benchmark (its seed, cameras and output size (H, W))."""

    def __init__(self, seed: int, cameras: Sequence[Camera], size: Tuple[int, int]):
        self.seed, self.size = seed, size
        self.cameras = {c.camid: c for c in cameras}
        self.grounds = {c.camid: ground_texture(seed, c) for c in cameras}

    def scene(self, look: Look, textures: FaceTextures, track: Track, k: int,
              rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """Scene radiance (uint8 BGR at output size) and fog depth map (float32 in [0, 1]) of frame ``k``."""
        cam = self.cameras[track.camid]
        out_h, out_w = self.size
        view = _frame_view(look, track, cam, k, rng, self.size)
        horizon_row = _horizon_row(view)
        canvas = _road_and_sky(self.grounds[cam.camid], view, cam, track, k, rng, (2 * out_h, 2 * out_w), horizon_row)
        _paint_shadow(canvas, view, look, cam)
        vmask = np.zeros(canvas.shape[:2], np.float32)
        _paint_body(canvas, vmask, look, textures, view, cam, track)
        _paint_roof_gear(canvas, vmask, look, view, cam, track)
        clear = cv2.resize(canvas, (out_w, out_h), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(vmask, (out_w, out_h), interpolation=cv2.INTER_AREA)
        clear = np.clip(clear + .5, 0, 255).astype(np.uint8)
        return clear, _fog_depth(view, mask, cam, horizon_row)

    def photograph(self, look: Look, textures: FaceTextures, track: Track, k: int,
                   real: bool) -> Tuple[bytes, Optional[bytes]]:
        """JPEG bytes of frame ``k``: (foggy, clear). A ``real`` frame gets patchy, tinted fog and no clear twin."""
        rng = stream(self.seed, T_FRAME, look.identity.pid, track.camid, k)
        cam = self.cameras[track.camid]
        clear, depth = self.scene(look, textures, track, k, rng)
        beta, airlight = sample_fog(rng)
        noise = rng.normal(0, cam.noise, clear.shape).astype(np.float32)
        if real:
            tint = np.clip(airlight * (1 + rng.uniform(-.06, .06, 3)), 0, 1)
            foggy = add_fog(clear, depth, _uneven_beta(rng, beta, depth.shape), tint)
        else:
            foggy = add_fog(clear, depth, beta, airlight)
        foggy_bytes = _encode_jpeg(_camera_response(foggy, cam, noise), cam.jpeg)
        clear_bytes = None if real else _encode_jpeg(_camera_response(clear, cam, noise), cam.jpeg)
        return foggy_bytes, clear_bytes
