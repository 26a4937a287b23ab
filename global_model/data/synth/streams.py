"""Random streams of the synthetic benchmark: one generator per decision, keyed by what it decides.

Every draw comes from ``numpy.random.default_rng([seed, tag, *keys])`` with one tag per kind of
decision (identity, camera, track, frame ...), so adding a draw somewhere never shifts another and
the output does not depend on the rendering order or the number of worker processes.
"""
from __future__ import annotations

import numpy as np

# One tag per kind of decision; the values are part of the output's definition: never renumber them.
T_IDENTITY, T_CAMERA, T_TRACK, T_FRAME, T_ORDER, T_GROUND, T_QUERY, T_SIGHTINGS = range(1, 9)


def stream(seed: int, *keys: int) -> np.random.Generator:
    """The generator of the decision keyed by ``(seed, *keys)``."""
    return np.random.default_rng([int(seed), *[int(k) for k in keys]])
