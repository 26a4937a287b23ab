"""Face textures: the body side, the front and rear ends, the top panels and the road.

A texture is premultiplied BGR float32 (zero outside the face) plus a [0, 1] mask, drawn at
``PX_PER_M`` pixels per metre; the renderer warps each face into the image by its plane homography.
The side is painted feature by feature (body, two-tone roof, sill, stripe, windows, pillars,
sticker, lights, wheels), in that order: later features cover earlier ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from .catalogue import (HEADLIGHTS, PLATES, RIM_COLOURS, RIM_STYLES, ROOF_GEAR, STICKER_POSITIONS, STICKERS, STRIPES,
                        TAILLIGHTS, bgr)
from .look import BGR, Look
from .scene import Camera
from .streams import T_GROUND, stream

PX_PER_M = 40.0
GROUND_PX_PER_M = 8.0
GROUND_SIZE_M = 32.0

Texture = Tuple[np.ndarray, np.ndarray]  # (premultiplied BGR float32 HxWx3, mask float32 HxW)


def _canvas(w_m: float, h_m: float) -> Texture:
    """An empty texture of ``w_m`` x ``h_m`` metres."""
    w, h = max(2, int(math.ceil(w_m * PX_PER_M))), max(2, int(math.ceil(h_m * PX_PER_M)))
    return np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32)


def fixed_point(points: np.ndarray) -> np.ndarray:
    """Polygon points in OpenCV's 4-bit fixed point (``shift=4``), shaped for ``fillPoly``."""
    return np.round(np.asarray(points) * 16).astype(np.int32).reshape(-1, 1, 2)


def _fill(img: np.ndarray, points, colour) -> None:
    """Antialiased polygon fill in texture pixels (sub-pixel precision)."""
    cv2.fillPoly(img, [fixed_point(points)], colour, lineType=cv2.LINE_AA, shift=4)


def _blend(img: np.ndarray, weight: np.ndarray, colour: BGR) -> None:
    """Paint ``colour`` over ``img`` (in place) with the HxW opacity ``weight``."""
    img[:] = img * (1 - weight[..., None]) + np.array(colour, np.float32) * weight[..., None]


def _star(cx: float, cy: float, r: float, n: int = 5) -> np.ndarray:
    ang = np.arange(2 * n) * math.pi / n - math.pi / 2
    rad = np.where(np.arange(2 * n) % 2 == 0, r, r * .45)
    return np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)


# ---------------------------------------------------------------------------------------------
# The body side (x from the front, y up).


@dataclass(frozen=True)
class _Side:
    """The side being painted: its look, the metres -> texture-pixels map and the heights marks follow."""

    look: Look
    bottom: float  # lowest point of the profile (the sill)
    belt: float  # lowest window edge
    window_top: float

    def px(self, x: float, y: float) -> np.ndarray:
        """Vehicle metres (x from the front, y up) -> texture pixels (x right, y down)."""
        return np.array([x * PX_PER_M, (self.look.height - y) * PX_PER_M])

    def row(self, y: float) -> int:
        return int(self.px(0, y)[1])


def _side_frame(look: Look) -> _Side:
    heights = [look.scaled(0, p[1])[1] for w in look.vehicle_type.windows for p in w]
    return _Side(look, bottom=float(look.profile[:, 1].min()), belt=min(heights), window_top=max(heights))


def _paint_body(img: np.ndarray, mask: np.ndarray, side: _Side) -> None:
    """The body silhouette, lighter at the shoulders and darker at the sills."""
    body = np.array([side.px(x, y) for x, y in side.look.profile])
    _fill(mask, body, 1.0)
    _fill(img, body, side.look.body_colour)
    yy = np.linspace(0, 1, img.shape[0], dtype=np.float32)[:, None, None]
    img *= (1.08 - .25 * yy)


def _paint_two_tone(img: np.ndarray, mask: np.ndarray, side: _Side) -> None:
    """The roof colour above the windows of a two-tone vehicle."""
    if not side.look.two_tone:
        return
    region = np.zeros_like(mask)
    cv2.rectangle(region, (0, 0), (img.shape[1], side.row(side.window_top + .02)), 1.0, -1)
    region *= mask
    _blend(img, region, side.look.roof_colour)


def _paint_sill(img: np.ndarray, mask: np.ndarray, side: _Side) -> None:
    cv2.rectangle(img, (0, side.row(side.bottom + .14)), (img.shape[1], side.row(side.bottom) + 1),
                  side.look.trim_colour, -1)


def _stripe_belt(marks: np.ndarray, side: _Side) -> None:
    cv2.rectangle(marks, (0, side.row(side.belt - .05)), (marks.shape[1], side.row(side.belt - .13)), 1.0, -1)


def _stripe_double(marks: np.ndarray, side: _Side) -> None:
    mid = (side.belt + side.bottom) / 2
    for dy in (.06, -.1):
        cv2.rectangle(marks, (0, side.row(mid + dy + .05)), (marks.shape[1], side.row(mid + dy)), 1.0, -1)


def _stripe_band(marks: np.ndarray, side: _Side) -> None:
    cv2.rectangle(marks, (0, side.row(side.bottom + .42)), (marks.shape[1], side.row(side.bottom + .16)), 1.0, -1)


def _stripe_slash(marks: np.ndarray, side: _Side) -> None:
    x0, x1 = .25 * side.look.length, .8 * side.look.length
    bottom, belt = side.bottom, side.belt
    _fill(marks, np.array([side.px(x0, bottom + .15), side.px(x0 + .5, bottom + .15), side.px(x1, belt - .05),
                          side.px(x1 - .5, belt - .05)]), 1.0)


def _stripe_checker(marks: np.ndarray, side: _Side) -> None:
    step = .22
    for k, x in enumerate(np.arange(0, side.look.length, step)):
        y = side.belt - .08 - (step / 2 if k % 2 else 0)
        cv2.rectangle(marks, tuple(side.px(x, y).astype(int)), tuple(side.px(x + step, y - step / 2).astype(int)),
                      1.0, -1)


# Side stripes by name; "none" and "center" (painted on the hood, roof and ends) draw nothing here.
_SIDE_STRIPES: Dict[str, Callable[[np.ndarray, _Side], None]] = {
    "belt": _stripe_belt, "double": _stripe_double, "band": _stripe_band, "slash": _stripe_slash,
    "checker": _stripe_checker}


def _paint_stripe(img: np.ndarray, mask: np.ndarray, side: _Side) -> None:
    marks = np.zeros_like(mask)
    painter = _SIDE_STRIPES.get(STRIPES[side.look.identity.stripe])
    if painter:
        painter(marks, side)
    marks *= mask
    _blend(img, marks, side.look.stripe_colour)


def _paint_windows(img: np.ndarray, mask: np.ndarray, side: _Side) -> None:
    """Tinted side windows, lighter at the top."""
    look = side.look
    for window in look.vehicle_type.windows:
        poly = np.array([side.px(*look.scaled(x, y)) for x, y in window])
        _fill(img, poly, look.glass_colour)
        grad = np.linspace(1.25, .9, img.shape[0], dtype=np.float32)[:, None]
        glass = np.zeros_like(mask)
        _fill(glass, poly, 1.0)
        img *= (1 + (grad - 1) * glass)[..., None]


def _paint_pillars(img: np.ndarray, mask: np.ndarray, side: _Side) -> None:
    """Pillars between the windows (a shade of the roof colour) and the door seams below them."""
    half = .07 * PX_PER_M
    colour = tuple(.8 * c for c in side.look.roof_colour)
    for pillar in side.look.vehicle_type.pillars:
        x = side.look.scaled(pillar, 0)[0] * PX_PER_M
        cv2.rectangle(img, (int(x - half), side.row(side.window_top + .05)), (int(x + half), side.row(side.belt - .02)),
                      colour, -1)
        cv2.line(img, (int(x), side.row(side.belt)), (int(x), side.row(side.bottom + .16)), (25, 25, 25), 1,
                 cv2.LINE_AA)


def _sticker_place(side: _Side) -> Tuple[np.ndarray, float]:
    """Centre (texture pixels) and radius (pixels) of the sticker."""
    look, ident, vt = side.look, side.look.identity, side.look.vehicle_type
    wx = [p[0] for w in vt.windows for p in w]
    span0, span1 = look.scaled(min(wx), 0)[0], look.scaled(max(wx), 0)[0]
    big = 2.2 if vt.name in ("bus", "truck") else 1.0
    pos = STICKER_POSITIONS[ident.sticker_pos]
    cx = {"front_door": span0 + .3 * (span1 - span0), "rear_door": span0 + .7 * (span1 - span0),
          "quarter": .5 * (span1 + look.length)}[pos]
    if vt.name == "truck":
        cx = {"front_door": .45 * look.length, "rear_door": .65 * look.length, "quarter": .85 * look.length}[pos]
    cy = (side.belt + side.bottom) / 2 if vt.name != "truck" else 1.9
    return side.px(cx, cy), ident.sticker_size * big / 2 * PX_PER_M


def _sticker_number(img: np.ndarray, c: np.ndarray, r: float, colour: BGR, pid: int) -> None:
    """A digit derived from the pid, antialiased (``putText`` draws on 8-bit images only)."""
    digit = str(pid * 7 % 10)
    scale = r / 11.0
    (tw, th), _ = cv2.getTextSize(digit, cv2.FONT_HERSHEY_SIMPLEX, scale, max(2, int(scale * 3)))
    glyph = np.zeros(img.shape[:2], np.uint8)
    cv2.putText(glyph, digit, (int(c[0] - tw / 2), int(c[1] + th / 2)), cv2.FONT_HERSHEY_SIMPLEX, scale, 255,
                max(2, int(scale * 3)), cv2.LINE_AA)
    _blend(img, glyph.astype(np.float32) / 255.0, colour)


def _paint_sticker(img: np.ndarray, mask: np.ndarray, side: _Side) -> None:
    kind = STICKERS[side.look.identity.sticker]
    if kind == "none":
        return
    c, r = _sticker_place(side)
    col = side.look.sticker_colour
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
        _sticker_number(img, c, r, col, side.look.identity.pid)


def _paint_side_lights(img: np.ndarray, mask: np.ndarray, side: _Side) -> None:
    """The head- and taillight corners visible from the side."""
    profile, length = side.look.profile, side.look.length
    cv2.rectangle(img, tuple(side.px(0, profile[1][1] - .05).astype(int)),
                  tuple(side.px(.12, profile[1][1] - .25).astype(int)), (200, 235, 245), -1)
    rear_top = profile[-2][1]
    cv2.rectangle(img, tuple(side.px(length - .1, rear_top - .08).astype(int)),
                  tuple(side.px(length, rear_top - .3).astype(int)), (30, 30, 200), -1)


def _paint_rim(img: np.ndarray, c: np.ndarray, rim_radius: float, style: str, colour: BGR) -> None:
    """A rim of ``style`` centred at ``c`` (texture pixels), with its hub."""
    ci = tuple(c.astype(int))
    rr = rim_radius
    if style == "steel":
        cv2.circle(img, ci, int(rr), (50, 50, 54), -1, cv2.LINE_AA)
        for k in range(6):
            a = k * math.pi / 3
            cv2.circle(img, (int(c[0] + .6 * rr * math.cos(a)), int(c[1] + .6 * rr * math.sin(a))),
                       max(1, int(rr * .15)), colour, -1, cv2.LINE_AA)
        return
    cv2.circle(img, ci, int(rr), colour, -1, cv2.LINE_AA)
    spokes = {"disc": 0, "spoke5": 5, "spoke6": 6, "multi": 10}[style]
    if spokes:
        cv2.circle(img, ci, int(rr * .85), (28, 28, 30), -1, cv2.LINE_AA)
        for k in range(spokes):
            a = k * 2 * math.pi / spokes
            cv2.line(img, ci, (int(c[0] + rr * .85 * math.cos(a)), int(c[1] + rr * .85 * math.sin(a))), colour,
                     max(1, int(rr * (.22 if spokes < 8 else .1))), cv2.LINE_AA)
    cv2.circle(img, ci, max(1, int(rr * .2)), (60, 60, 64), -1, cv2.LINE_AA)


def _paint_wheels(img: np.ndarray, mask: np.ndarray, side: _Side) -> None:
    """Per axle: wheel arch, tyre (which extends the mask below the sill), rim and hub."""
    look, vt = side.look, side.look.vehicle_type
    colour = bgr(RIM_COLOURS[look.identity.rim_colour])
    style = RIM_STYLES[look.identity.rim_style]
    for axle in vt.axles:
        r = vt.wheel_r * PX_PER_M
        c = side.px(look.scaled(axle, 0)[0], vt.wheel_r)
        ci = tuple(c.astype(int))
        cv2.circle(img, ci, int(r * 1.12), (18, 18, 18), -1, cv2.LINE_AA)
        cv2.circle(mask, ci, int(r), 1.0, -1, cv2.LINE_AA)
        cv2.circle(img, ci, int(r), (22, 22, 24), -1, cv2.LINE_AA)
        _paint_rim(img, c, r * .62, style, colour)


_SIDE_PAINTERS = (_paint_body, _paint_two_tone, _paint_sill, _paint_stripe, _paint_windows, _paint_pillars,
                  _paint_sticker, _paint_side_lights, _paint_wheels)


def side_texture(look: Look) -> Texture:
    """The body side (x from the front, y up) with windows, marks and wheels."""
    img, mask = _canvas(look.length, look.height)
    side = _side_frame(look)
    for paint in _SIDE_PAINTERS:
        paint(img, mask, side)
    img *= mask[..., None]
    return img, mask


# ---------------------------------------------------------------------------------------------
# The front and rear ends and the top panels (x across the vehicle, y along the profile edge).


def _paint_headlights(img: np.ndarray, style: str, ly0: float, ly1: float, low: float) -> None:
    w = img.shape[1]
    for side in (0, 1):
        xc = .14 * w if side == 0 else .86 * w
        if style == "round":
            cv2.circle(img, (int(xc), int((ly0 + ly1) / 2)), int(.09 * w), (225, 245, 250), -1, cv2.LINE_AA)
        elif style == "rect":
            cv2.rectangle(img, (int(xc - .1 * w), int(ly0)), (int(xc + .1 * w), int(ly1)), (225, 245, 250), -1)
        else:
            cv2.rectangle(img, (int(xc - .13 * w), int(ly0)), (int(xc + .13 * w), int(ly0 + .1 * low)),
                          (225, 245, 250), -1)


def _paint_taillights(img: np.ndarray, style: str, ly0: float, ly1: float, low: float) -> None:
    w = img.shape[1]
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


def end_texture(look: Look, w_m: float, h_m: float, front: bool) -> Texture:
    """Front or rear face: bumper, lights, grille / tailgate, plate, windscreen on tall ends."""
    ident, vt, s = look.identity, look.vehicle_type, PX_PER_M
    img, mask = _canvas(w_m, h_m)
    h, w = mask.shape
    mask[:] = 1.0
    img[:] = look.body_colour
    glass_frac = vt.front_glass if front else vt.rear_glass
    top = 0
    if glass_frac:
        g = int(h * glass_frac)
        cv2.rectangle(img, (int(.06 * w), int(.04 * h)), (int(.94 * w), g), look.glass_colour, -1)
        top = g
    low = h - top
    cv2.rectangle(img, (0, int(h - .22 * low)), (w, h), look.trim_colour, -1)  # bumper
    pw, ph = .52 * s, .13 * s
    cv2.rectangle(img, (int(w / 2 - pw / 2), int(h - .2 * low - ph)), (int(w / 2 + pw / 2), int(h - .2 * low)),
                  bgr(PLATES[ident.plate]), -1)
    ly0, ly1 = top + .12 * low, top + .42 * low
    if front:
        cv2.rectangle(img, (int(.3 * w), int(ly0)), (int(.7 * w), int(top + .62 * low)), (30, 30, 32), -1)  # grille
        _paint_headlights(img, HEADLIGHTS[ident.headlight], ly0, ly1, low)
    else:
        _paint_taillights(img, TAILLIGHTS[ident.taillight], ly0, ly1, low)
        if vt.name in ("truck", "van", "bus"):  # the seam between the rear doors
            cv2.line(img, (w // 2, top), (w // 2, int(h - .22 * low)), (40, 40, 40), 1, cv2.LINE_AA)
    if STRIPES[ident.stripe] == "center":
        for dx in (-.12, .06):
            cv2.rectangle(img, (int(w / 2 + dx * s), top), (int(w / 2 + (dx + .06) * s), int(h - .22 * low)),
                          look.stripe_colour, -1)
    return img, mask


def top_texture(look: Look, w_m: float, h_m: float, role: str) -> Texture:
    """Hood, roof, trunk, windscreen, pickup bed or plain body panel (x across, y along the edge)."""
    ident, s = look.identity, PX_PER_M
    img, mask = _canvas(w_m, h_m)
    h, w = mask.shape
    mask[:] = 1.0
    if role == "glass":
        img[:] = look.body_colour
        cv2.rectangle(img, (int(.06 * w), int(.06 * h)), (int(.94 * w), int(.94 * h)), look.glass_colour, -1)
        grad = np.linspace(1.3, .85, h, dtype=np.float32)[:, None, None]
        img[int(.06 * h):int(.94 * h), int(.06 * w):int(.94 * w)] *= grad[int(.06 * h):int(.94 * h)]
        return img, mask
    img[:] = look.roof_colour if role == "roof" else look.body_colour
    if role == "bed":
        cv2.rectangle(img, (int(.08 * w), int(.05 * h)), (int(.92 * w), int(.95 * h)), (45, 45, 48), -1)
    if role == "roof" and ROOF_GEAR[ident.roof] == "sunroof":
        cv2.rectangle(img, (int(.25 * w), int(.2 * h)), (int(.75 * w), int(.55 * h)), (22, 22, 26), -1)
    if STRIPES[ident.stripe] == "center" and role in ("hood", "roof", "trunk", "body"):
        for dx in (-.12, .06):
            cv2.rectangle(img, (int(w / 2 + dx * s), 0), (int(w / 2 + (dx + .06) * s), h), look.stripe_colour, -1)
    return img, mask


def face_texture(look: Look, role: str, w_m: float, h_m: float) -> Texture:
    """The texture of a body face of ``role`` and size ``w_m`` x ``h_m`` metres."""
    if role == "side":
        return side_texture(look)
    if role in ("front", "rear"):
        return end_texture(look, w_m, h_m, front=role == "front")
    return top_texture(look, w_m, h_m, role)


# ---------------------------------------------------------------------------------------------
# The road.


def _ground_row(z: float) -> int:
    """Metres across the road (centre 0) -> ground texture row."""
    return int((z + GROUND_SIZE_M / 2) * GROUND_PX_PER_M)


def _paint_lanes(img: np.ndarray, road: Tuple[float, float], colour: BGR) -> None:
    """Solid edge lines and dashed lane lines (dash 2 m, period 4 m) every 3.5 m across the road."""
    n = img.shape[1]
    road_l, road_r = road
    for z in np.arange(road_l, road_r + 1e-6, 3.5):
        r = _ground_row(z)
        if abs(z - road_l) < 1e-6 or abs(z - road_r) < 1e-6:
            cv2.rectangle(img, (0, r - 1), (n, r + 1), colour, -1)
        else:
            for x in range(0, n, int(4 * GROUND_PX_PER_M)):
                cv2.rectangle(img, (x, r - 1), (x + int(2 * GROUND_PX_PER_M), r + 1), colour, -1)


def ground_texture(seed: int, cam: Camera) -> np.ndarray:
    """Road seen from above (x along the road, period 4 m; z across), one per camera."""
    rng = stream(seed, T_GROUND, cam.camid)
    n = int(GROUND_SIZE_M * GROUND_PX_PER_M)
    base = rng.uniform(70, 125)
    tint = rng.uniform(-8, 8, 3)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (n, n)).astype(np.float32), (0, 0), 1.5)
    img = (base + tint)[None, None, :] + 14 * noise[..., None]
    img = img.astype(np.float32)
    road_l, road_r = -1.75 - 3.5 * int(rng.integers(0, 3)), 1.75 + 3.5 * int(rng.integers(0, 3))
    verge = bgr([(150, 150, 146), (70, 120, 60), (140, 120, 90)][int(rng.integers(3))])
    img[:_ground_row(road_l)] = np.array(verge, np.float32) + 10 * noise[:_ground_row(road_l), :, None]
    img[_ground_row(road_r):] = np.array(verge, np.float32) + 10 * noise[_ground_row(road_r):, :, None]
    line = bgr((225, 225, 220)) if rng.random() < .7 else bgr((225, 190, 50))
    _paint_lanes(img, (road_l, road_r), line)
    for _ in range(int(rng.integers(2, 7))):  # stains and patches
        c = (int(rng.integers(n)), int(rng.integers(n)))
        axes = (int(rng.integers(6, 30)), int(rng.integers(4, 16)))
        cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360, tuple(float(base * .75) for _ in range(3)), -1)
    return img

