"""The ``FVRID_clear`` view of the synthetic benchmark: clear images of identities of their own.

RVSL's stage 2 learns from real clear images whose identities differ from the real hazy ones
(``FVRID_clear/{train,query,gallery}_clear``). This view renders as many identities as
``FVRID_real`` has (half train, half query/gallery, split like the test identities), numbered
``CLEAR_PID_BASE + 1..``, clear twin only. Every draw (identity, sightings, tracks, frames, query
choice) comes from the benchmark's keyed streams under these new pids, so the view has its own
random streams: no file that existed before it changes by a byte.
"""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

from .catalogue import make_identities
from .plan import CLEAR, Frame, Plan, RenderJob, Sighting, _fvrid_name, _frame_no, _planned_tracks

__all__ = ["CLEAR_FOLDERS", "CLEAR_PID_BASE", "clear_view_jobs"]

CLEAR_PID_BASE = 20000  # FVRID_clear identities are 20001.. (FVRID_real's are 10001..)
CLEAR_FOLDERS = tuple(os.path.join("fvrid", "FVRID_clear", f"{split}_clear") for split in ("train", "query", "gallery"))


def clear_view_jobs(p: Plan) -> Tuple[RenderJob, ...]:
    """The render jobs of the ``FVRID_clear`` view of plan ``p`` (none without FVRID_real ids); their
    files lie in :data:`CLEAR_FOLDERS`. Pure, like the plan."""
    n = len(p.groups.real_train) + len(p.groups.real_test)
    if not n:
        return ()
    pids = [CLEAR_PID_BASE + i for i in range(1, n + 1)]
    train, test = pids[: n // 2], pids[n // 2:]
    identities = {i.pid: i for i in make_identities(p.seed, pids)}
    by_pid: Dict[int, List[Sighting]] = {}
    for planned in _planned_tracks(p.seed, train, test, p.cameras):
        t = planned.track
        frames = tuple(Frame(k, _frame_no(t, k), False,
                             ((f"fvrid/FVRID_clear/{planned.split}_clear/{_fvrid_name(t.pid, t.camid, _frame_no(t, k))}",
                               CLEAR),))
                       for k in planned.indices)
        by_pid.setdefault(t.pid, []).append(Sighting(t, frames))
    return tuple(RenderJob(identities[pid], False, tuple(by_pid[pid])) for pid in sorted(by_pid))
