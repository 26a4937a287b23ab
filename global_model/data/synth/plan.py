"""The plan of a benchmark: which frames exist, what they show and which files they go to.

``plan(seed, ids, ...)`` is a pure function of its arguments and returns frozen records only: the
render jobs (one per identity, its tracks and frames, each frame with its output paths) and the
AIC label and track lists. Nothing is rendered or written here; ``writer.py`` does that.

Identities ``1..train`` are the AIC / FVRID_syn train set and the next ``test`` ones its test set;
``REAL_PID_BASE + 1..`` make up FVRID_real (unpaired, foggy only). A test identity's sightings are
split into query sightings (foggy ones first; one frame each becomes a query image) and gallery
tracks (every frame).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from post_processing.errors import ReidUsageError

from .catalogue import Identity, make_identities
from .scene import Camera, Track, make_cameras, sightings
from .streams import T_ORDER, T_QUERY, stream

REAL_PID_BASE = 10000  # FVRID_real identities are 10001.. (AIC ids are at most 9999)
CLEAR, FOGGY = "clear", "foggy"  # the two twins of a rendered frame
# FVRID split -> (AIC split, AIC image folder)
_AIC_SPLITS = {"train": ("train", "image_train"), "query": ("query", "image_query"), "gallery": ("test", "image_test")}
_FVRID_SPLITS = ("train", "query", "gallery")


class SynthError(ReidUsageError, ValueError):
    """A benchmark setting out of range: names the setting, its value and the allowed range."""


@dataclass(frozen=True)
class Frame:
    """One frame of a track and the files it is written to."""

    index: int  # within its track: keys its random stream and its pose
    frame_no: int
    foggy: bool  # the twin the AIC copy shows (FVRID_real frames are always foggy)
    outputs: Tuple[Tuple[str, str], ...]  # (path relative to the output folder, CLEAR or FOGGY)


@dataclass(frozen=True)
class Sighting:
    """A track and the frames of it that are rendered."""

    track: Track
    frames: Tuple[Frame, ...]


@dataclass(frozen=True)
class RenderJob:
    """Everything to render for one identity."""

    identity: Identity
    real: bool  # an FVRID_real identity: patchy, tinted fog and no clear twin
    sightings: Tuple[Sighting, ...]


@dataclass(frozen=True)
class Label:
    """One line of an AIC label file."""

    name: str
    pid: int
    camid: int
    colour_id: int  # 1-based colour family
    type_id: int  # 1-based body type
    orientation: float  # yaw in degrees (not reduced modulo 360)
    foggy: bool


@dataclass(frozen=True)
class AicSplit:
    """One AIC split: its label list (in name order) and its tracks (image names)."""

    name: str  # train, query or test: the prefix of its files
    folder: str  # image_train, image_query or image_test
    labels: Tuple[Label, ...]
    tracks: Tuple[Tuple[str, ...], ...]  # empty for the query split, which has no track file


@dataclass(frozen=True)
class IdentityGroups:
    """The pids of the four identity sets (disjoint)."""

    train: Tuple[int, ...]
    test: Tuple[int, ...]
    real_train: Tuple[int, ...]
    real_test: Tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    seed: int
    cameras: Tuple[Camera, ...]
    groups: IdentityGroups
    jobs: Tuple[RenderJob, ...]  # by pid
    aic: Tuple[AicSplit, AicSplit, AicSplit]  # train, query, test
    real_counts: Tuple[Tuple[str, int], ...]  # FVRID_real images per split (train, query, gallery)

    @property
    def frames(self) -> int:
        """Frames to render."""
        return sum(len(s.frames) for job in self.jobs for s in job.sightings)


@dataclass(frozen=True)
class _Planned:
    """A track before naming: the FVRID split it belongs to and the indices of its rendered frames."""

    split: str
    track: Track
    indices: Tuple[int, ...]


def _check_settings(seed: int, ids: int, test_ids: int, cameras: int, real_ids: int) -> None:
    """Raise :class:`SynthError` for a setting out of range."""
    if not isinstance(seed, int) or seed < 0:
        raise SynthError(f"seed must be a non-negative integer, got {seed!r}")
    if not 4 <= ids <= 9999:
        raise SynthError(f"ids must be in 4..9999 (train + test), got {ids}")
    if not 2 <= test_ids <= ids - 2:
        raise SynthError(f"test_ids must leave at least 2 of the {ids} ids on each side, got {test_ids}")
    if not 2 <= cameras <= 99:
        raise SynthError(f"cameras must be in 2..99 (queries need a match on another camera), got {cameras}")
    if real_ids != 0 and not 2 <= real_ids <= 9999:
        raise SynthError(f"real_ids must be 0 (no FVRID_real view) or in 2..9999, got {real_ids}")


def _identity_groups(ids: int, test_ids: int, real_ids: int) -> IdentityGroups:
    n_train, n_real_train = ids - test_ids, real_ids // 2
    return IdentityGroups(tuple(range(1, n_train + 1)), tuple(range(n_train + 1, ids + 1)),
                          tuple(range(REAL_PID_BASE + 1, REAL_PID_BASE + n_real_train + 1)),
                          tuple(range(REAL_PID_BASE + n_real_train + 1, REAL_PID_BASE + real_ids + 1)))


def _split_test(seed: int, pid: int, tracks: List[Track]) -> Tuple[List[Track], List[Track], Dict[int, int]]:
    """Query sightings (foggy ones first, at least one sighting left for the gallery), gallery
    sightings and the frame of each query track (by camera) that becomes the query image."""
    rng = stream(seed, T_QUERY, pid)
    order = sorted(range(len(tracks)), key=lambda i: (not tracks[i].foggy, rng.random()))
    nq = max(1, len(tracks) // 2)
    query = [tracks[i] for i in sorted(order[:nq])]
    gallery = [tracks[i] for i in sorted(order[nq:])]
    frames = {t.camid: int(rng.integers(t.frames)) for t in query}
    return query, gallery, frames


def _planned_tracks(seed: int, train: Sequence[int], test: Sequence[int], cams: Sequence[Camera]) -> List[_Planned]:
    """Train identities: every frame of every sighting. Test: one frame per query sighting, gallery tracks whole."""
    out = []
    for pid in train:
        out += [_Planned("train", t, tuple(range(t.frames))) for t in sightings(seed, pid, cams)]
    for pid in test:
        query, gallery, qframe = _split_test(seed, pid, sightings(seed, pid, cams, test=True))
        out += [_Planned("query", t, (qframe[t.camid],)) for t in query]
        out += [_Planned("gallery", t, tuple(range(t.frames))) for t in gallery]
    return out


def _fvrid_name(pid: int, camid: int, frame_no: int) -> str:
    return f"{pid:05d}_c{camid:03d}_{frame_no:06d}_0.jpg"


def _frame_no(track: Track, k: int) -> int:
    return track.start_frame + 5 * k


def _aic_split(fvrid_split: str, planned: Sequence[_Planned], identities: Dict[int, Identity]
               ) -> Tuple[AicSplit, Dict[Tuple[int, int], Tuple[Frame, ...]]]:
    """Name the images of one split in ``planned`` order (000001.jpg ...): the AIC split and the
    frames of each (pid, camid) track, each written to AIC and to both FVRID_syn twins."""
    split, folder = _AIC_SPLITS[fvrid_split]
    labels: List[Label] = []
    tracks, frames = [], {}
    for p in planned:
        t, ident, names, track_frames = p.track, identities[p.track.pid], [], []
        for k in p.indices:
            name = f"{len(labels) + 1:06d}.jpg"
            syn = _fvrid_name(t.pid, t.camid, _frame_no(t, k))
            outputs = ((f"{folder}/{name}", FOGGY if t.foggy else CLEAR),
                       (f"fvrid/FVRID_syn/{fvrid_split}_clear/{syn}", CLEAR),
                       (f"fvrid/FVRID_syn/{fvrid_split}_foggy/{syn}", FOGGY))
            track_frames.append(Frame(k, _frame_no(t, k), t.foggy, outputs))
            labels.append(Label(name, t.pid, t.camid, ident.family + 1, ident.vtype + 1, t.yaw + k * t.yaw_step,
                                t.foggy))
            names.append(name)
        tracks.append(tuple(names))
        frames[(t.pid, t.camid)] = tuple(track_frames)
    return AicSplit(split, folder, tuple(labels), tuple(tracks) if split != "query" else ()), frames


def _real_frames(planned: Sequence[_Planned]) -> Dict[Tuple[int, int], Tuple[Frame, ...]]:
    """FVRID_real: foggy images only, named like FVRID_syn's."""
    frames = {}
    for p in planned:
        t = p.track
        frames[(t.pid, t.camid)] = tuple(
            Frame(k, _frame_no(t, k), True,
                  ((f"fvrid/FVRID_real/{p.split}_foggy/{_fvrid_name(t.pid, t.camid, _frame_no(t, k))}", FOGGY),))
            for k in p.indices)
    return frames


def _jobs(planned: Sequence[_Planned], frames: Dict[Tuple[int, int], Tuple[Frame, ...]],
          identities: Dict[int, Identity]) -> Tuple[RenderJob, ...]:
    """One job per identity (by pid) with its sightings in planning order."""
    by_pid: Dict[int, List[Sighting]] = {}
    for p in planned:
        by_pid.setdefault(p.track.pid, []).append(Sighting(p.track, frames[(p.track.pid, p.track.camid)]))
    return tuple(RenderJob(identities[pid], pid > REAL_PID_BASE, tuple(by_pid[pid])) for pid in sorted(by_pid))


def plan(seed: int, ids: int = 240, test_ids: Optional[int] = None, cameras: int = 6,
         real_ids: Optional[int] = None) -> Plan:
    """The plan of a benchmark with ``ids`` identities, ``test_ids`` of them test identities
    (default half) and ``real_ids`` FVRID_real identities (default ``max(4, ids // 4)``, 0 = none)."""
    test_ids = ids // 2 if test_ids is None else int(test_ids)
    real_ids = max(4, ids // 4) if real_ids is None else int(real_ids)
    _check_settings(seed, ids, test_ids, cameras, real_ids)
    cams = tuple(make_cameras(seed, cameras))
    groups = _identity_groups(ids, test_ids, real_ids)
    identities = {i.pid: i for pids in (groups.train, groups.test, groups.real_train, groups.real_test)
                  for i in make_identities(seed, pids)}
    syn = _planned_tracks(seed, groups.train, groups.test, cams)
    real = _planned_tracks(seed, groups.real_train, groups.real_test, cams)
    order = stream(seed, T_ORDER, 0)  # AIC lists are shuffled: names say nothing about identity
    aic, frames = [], _real_frames(real)
    for fvrid_split in _FVRID_SPLITS:
        planned = [p for p in syn if p.split == fvrid_split]
        split, split_frames = _aic_split(fvrid_split, [planned[i] for i in order.permutation(len(planned))],
                                         identities)
        aic.append(split)
        frames.update(split_frames)
    real_counts = tuple((s, sum(len(p.indices) for p in real if p.split == s)) for s in _FVRID_SPLITS)
    return Plan(seed, cams, groups, _jobs(syn + real, frames, identities), tuple(aic), real_counts)
