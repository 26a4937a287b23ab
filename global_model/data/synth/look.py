"""An identity resolved to concrete geometry (its jittered profile) and colours (BGR)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .catalogue import COLOUR_FAMILIES, MARK_COLOURS, TINTS, TRIMS, TWO_TONE, TYPES, Identity, VehicleType, bgr

BGR = Tuple[float, float, float]


@dataclass(frozen=True)
class Look:
    """How one identity is drawn: its body profile after the size jitter and its colours."""

    identity: Identity
    vehicle_type: VehicleType
    profile: np.ndarray  # (n, 2) metres after the size jitter
    roles: Tuple[str, ...]  # role of the profile edge starting at each point
    body_colour: BGR
    roof_colour: BGR  # the body colour unless the vehicle is two-tone
    glass_colour: BGR
    trim_colour: BGR
    stripe_colour: BGR
    sticker_colour: BGR

    @property
    def length(self) -> float:
        return float(self.profile[:, 0].max())

    @property
    def height(self) -> float:
        return float(self.profile[:, 1].max())

    @property
    def width(self) -> float:
        return self.vehicle_type.width

    @property
    def two_tone(self) -> bool:
        return TWO_TONE[self.identity.two_tone] != "none"

    def scaled(self, x: float, y: float) -> Tuple[float, float]:
        """A point of the type table (metres) on this vehicle, i.e. after its size jitter."""
        return x * self.identity.length_scale, y * self.identity.height_scale


def make_look(ident: Identity) -> Look:
    """The geometry and colours of ``ident``."""
    vt = TYPES[ident.vtype]
    prof = np.array([(p[0] * ident.length_scale, p[1] * ident.height_scale) for p in vt.profile], np.float64)
    prof.flags.writeable = False  # a Look is immutable, its profile included
    body = bgr(COLOUR_FAMILIES[ident.family][2][ident.shade])
    roof = {"none": body, "white": (238.0, 238.0, 238.0), "black": (26.0, 26.0, 26.0)}[TWO_TONE[ident.two_tone]]
    trim = {"black": (30.0, 30.0, 32.0), "body": tuple(.85 * c for c in body), "chrome": (205.0, 205.0, 210.0)}
    return Look(identity=ident, vehicle_type=vt, profile=prof, roles=tuple(p[2] for p in vt.profile),
                body_colour=body, roof_colour=roof, glass_colour=bgr(TINTS[ident.tint]),
                trim_colour=trim[TRIMS[ident.trim]], stripe_colour=bgr(MARK_COLOURS[ident.stripe_colour]),
                sticker_colour=bgr(MARK_COLOURS[ident.sticker_colour]))
