"""Synthetic foggy-vehicle ReID benchmark (``python -m global_model synth --out DIR``).

Vehicles are drawn procedurally with OpenCV as extruded side profiles under a pinhole camera:
every face is a texture mapped by the exact plane homography, so wheels become ellipses and
stickers foreshorten with the viewpoint. Output (``DIR``): the AIC20 / CityFlow-ReID layout (plus
ground truth for query and test in the train-label schema) and an FVRID-style view under
``DIR/fvrid`` (``FVRID_syn`` clear/foggy twins of the same images, ``FVRID_real`` unpaired foggy
images of other identities with uneven, tinted fog). Every random draw comes from a generator keyed
by what it decides, so output is byte-identical for a seed whatever the number of worker
processes. numpy + OpenCV only (no torch).

Modules, in dependency order: ``streams`` (the keyed random generators), ``catalogue`` (body
types, colours, marks, identities), ``scene`` (cameras, tracks, sightings), ``look`` (an identity's
geometry and colours), ``textures`` (face and road painting), ``geometry`` (view, faces, warping),
``renderer`` (a frame as the camera records it), ``plan`` (the pure, immutable plan: frames and
their output paths) and ``writer`` (rendering the plan to disk, label files, summary).
"""
from .catalogue import TYPES, Identity, VehicleType, make_identities
from .plan import (REAL_PID_BASE, AicSplit, Frame, IdentityGroups, Label, Plan, RenderJob, Sighting, SynthError,
                   plan)
from .scene import TEST_SIGHTINGS, TRAIN_SIGHTINGS, Camera, Track, make_cameras, make_track
from .writer import AIC_OUTPUTS, format_summary, generate

__all__ = ["AIC_OUTPUTS", "REAL_PID_BASE", "TEST_SIGHTINGS", "TRAIN_SIGHTINGS", "TYPES", "AicSplit", "Camera", "Frame",
           "Identity", "IdentityGroups", "Label", "Plan", "RenderJob", "Sighting", "SynthError", "Track",
           "VehicleType", "format_summary", "generate", "make_cameras", "make_identities", "make_track", "plan"]
