"""A validation split carved from a dataset's training identities (the ``val_ids`` / ``val_seed`` loader options).

Competition teams choose models, fusion weights and post-processing on identities held out of
training, never on the test split. :func:`carve_validation` (applied once by ``load_dataset`` to any
loader's result when ``val_ids`` is given) removes ``val_ids`` identities from ``train`` and builds a
query/gallery split from them with the test split's rules:

- an identity's images are grouped into sightings: its tracks (``trackid``, AIC's ``train_track.txt``)
  or, without tracks, its cameras;
- half of the sightings (at least one; sightings marked ``foggy`` first, like the synthetic
  benchmark's test queries) give one query image each, a random frame; the other sightings are
  gallery tracks, every frame;
- an identity with a single sighting has no cross-sighting match: all its frames go to the gallery
  (distractors), none to the query.

Which identities are held out depends only on ``val_seed`` and each identity's own id (the ids with
the smallest seeded hash), so two loaders that number the same vehicles alike (AIC's ``image_train``
and FVRID's ``FVRID_syn`` of the synthetic benchmark) hold out the same vehicles.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from typing import Dict, List, Sequence, Tuple, Union

from ..records import ImageRecord
from . import DatasetError, DatasetSplits

__all__ = ["VAL_OPTIONS", "carve_validation", "choose_val_ids", "split_view"]

VAL_OPTIONS = ("val_ids", "val_seed")


def _rank_key(seed: int, pid: int) -> str:
    return hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest()


def choose_val_ids(pids: Sequence[int], val_ids: Union[int, float], seed: int = 0) -> List[int]:
    """The held-out ids (sorted): ``val_ids`` of them when an integer >= 1, else that fraction (rounded,
    at least one) of the distinct ``pids``; all but one id is refused (nothing left to train on)."""
    distinct = sorted(set(pids))
    if isinstance(val_ids, bool) or not isinstance(val_ids, (int, float)):
        raise DatasetError(f"loader option val_ids: expected a number of identities or a fraction in (0, 1), "
                           f"got {val_ids!r}")
    if isinstance(val_ids, float) and not val_ids.is_integer():
        if not 0 < val_ids < 1:
            raise DatasetError(f"loader option val_ids: a fraction must be in (0, 1), got {val_ids}")
        count = max(1, round(val_ids * len(distinct)))
    else:
        count = int(val_ids)
    if not 1 <= count < len(distinct):
        raise DatasetError(f"loader option val_ids={val_ids}: the training split has {len(distinct)} identities; "
                           f"hold out between 1 and {len(distinct) - 1}")
    return sorted(sorted(distinct, key=lambda p: _rank_key(seed, p))[:count])


def _sightings(records: Sequence[ImageRecord]) -> List[List[ImageRecord]]:
    """One identity's images grouped by track (or by camera without tracks), in first-seen order."""
    groups: Dict[Tuple[str, int], List[ImageRecord]] = {}
    for r in records:
        key = ("track", r.trackid) if r.trackid >= 0 else ("camera", r.camid)
        groups.setdefault(key, []).append(r)
    return list(groups.values())


def _split_identity(seed: int, pid: int,
                    records: Sequence[ImageRecord]) -> Tuple[List[ImageRecord], List[List[ImageRecord]]]:
    """(query images, gallery tracks) of one held-out identity (the module's rules)."""
    rng = random.Random(_rank_key(seed, pid))
    groups = _sightings(records)
    if len(groups) < 2:
        return [], groups
    order = sorted(range(len(groups)), key=lambda i: (not any(r.attrs.get("foggy") for r in groups[i]), rng.random()))
    nq = max(1, len(groups) // 2)
    query = [groups[i][rng.randrange(len(groups[i]))] for i in sorted(order[:nq])]
    gallery = [groups[i] for i in sorted(order[nq:])]
    return query, gallery


def carve_validation(splits: DatasetSplits, val_ids: Union[int, float], val_seed: int = 0) -> DatasetSplits:
    """``splits`` with ``val_ids`` training identities moved out of ``train`` into
    ``extra["validation"]``: a :class:`DatasetSplits` whose query/gallery follow the module's rules and
    whose ``extra`` has ``tracks`` (gallery names per track), ``has_ground_truth`` and ``val_ids``."""
    labelled = [r for r in splits.train if r.pid >= 0]
    if not labelled:
        raise DatasetError(f"dataset {splits.name!r} at {splits.root}: val_ids needs labelled training images")
    held = choose_val_ids([r.pid for r in labelled], val_ids, int(val_seed))
    held_set = set(held)
    by_pid: Dict[int, List[ImageRecord]] = {}
    for r in labelled:
        if r.pid in held_set:
            by_pid.setdefault(r.pid, []).append(r)
    query: List[ImageRecord] = []
    tracks: List[List[ImageRecord]] = []
    for pid in held:
        q, g = _split_identity(int(val_seed), pid, by_pid[pid])
        query += q
        tracks += g
    if not query:
        raise DatasetError(f"dataset {splits.name!r} at {splits.root}: no held-out identity was seen in two "
                           f"tracks/cameras, so the validation split has no query with a match; hold out more ids")
    gallery = [replace(r, trackid=t) for t, track in enumerate(tracks) for r in track]
    # The dataset's protocol and declared query subsets (e.g. foggy) carry over to its validation split.
    val = replace(splits, name=f"{splits.name}_val", train=[], query=query, gallery=gallery,
                  extra={"tracks": [[r.name for r in track] for track in tracks], "has_ground_truth": True,
                         "val_ids": held, "val_seed": int(val_seed)}, notes=[])
    train = [r for r in splits.train if r.pid not in held_set]
    return replace(splits, train=train, extra={**splits.extra, "validation": val})


def split_view(splits: DatasetSplits, split: str) -> DatasetSplits:
    """The query/gallery a command works on: ``test`` is ``splits`` itself, ``val`` the carved validation
    split (loaded with ``val_ids``)."""
    if split == "test":
        return splits
    if split != "val":
        raise DatasetError(f"split must be val or test, got {split!r}")
    val = splits.extra.get("validation")
    if val is None:
        raise DatasetError(f"dataset {splits.name!r} at {splits.root}: no validation split; load it with the "
                           f"val_ids option (e.g. DATASETS.TEST \"{splits.name}(val_ids=60)\" or --val-ids 60)")
    return val
