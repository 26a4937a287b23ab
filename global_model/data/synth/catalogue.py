"""What vehicles can look like: body types, colours, marks, and the identities drawn from them.

An identity is a body type (with a small shape jitter), a body colour from a palette with
near-duplicate shades and a set of marks (stripes, stickers, roof gear, wheel style, window tint,
trim, lights, plate); "sibling" identities copy another one and change two marks, as fleets do.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .streams import T_IDENTITY, stream

RGB = Tuple[int, int, int]


@dataclass(frozen=True)
class VehicleType:
    """A body type: side profile (clockwise from the front bottom, metres, x rearwards, y up) with
    the role of the edge that starts at each point; side windows, pillars, axles."""

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
COLOUR_FAMILIES: Tuple[Tuple[str, float, Tuple[RGB, ...]], ...] = (
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
MARK_COLOURS: Tuple[RGB, ...] = (  # RGB; stripes, stickers, roof boxes
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


def bgr(rgb: Sequence[float]) -> Tuple[float, float, float]:
    """A catalogue colour (RGB) in OpenCV's channel order."""
    return float(rgb[2]), float(rgb[1]), float(rgb[0])


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


# Each mark: (number of choices, their weights or None for uniform), drawn in this order.
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


def _draw_sibling(rng: np.random.Generator, parent: Identity, drawn: Identity) -> Identity:
    """``parent`` with two marks taken from ``drawn`` (and ``drawn``'s pid and size jitter)."""
    changed = rng.choice(len(MARK_FIELDS), 2, replace=False)
    updates = {MARK_FIELDS[i]: getattr(drawn, MARK_FIELDS[i]) for i in changed}
    return replace(parent, pid=drawn.pid, length_scale=drawn.length_scale, height_scale=drawn.height_scale,
                   **updates)


def make_identities(seed: int, pids: Sequence[int], sibling_rate: float = 0.2) -> List[Identity]:
    """Identities for ``pids`` in order; a fraction are siblings of an earlier one (two marks changed).

    Siblings are taken only from the same list, so train and test identities stay independent.
    Signatures are unique: a draw that repeats an earlier identity is redrawn.
    """
    out: List[Identity] = []
    seen = set()
    for pid in pids:
        for attempt in range(1000):
            rng = stream(seed, T_IDENTITY, pid, attempt)
            ident = _draw_identity(rng, pid)
            if out and rng.random() < sibling_rate:
                ident = _draw_sibling(rng, out[int(rng.integers(len(out)))], ident)
            if ident.signature() not in seen:
                break
        seen.add(ident.signature())
        out.append(ident)
    return out
