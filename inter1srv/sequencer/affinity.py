"""Which worker gets a session's next window (sans-I/O).

Workers keep per-session caches (face frames, decoded speech: ``workers.baseline``), and
windows overlap (8 s every 3 s), so a session's windows should go to the worker that saw
its previous ones: on two CPU workers, windows scattered over both measured 0.11 CPU s per
media s against 0.08 for one worker (``perf/REPORT.md``). A session is pinned to the worker
with the fewest pinned sessions when its first window is dispatched; its windows go there
and wait for its credit, except that a window spills to a worker with nothing in flight
(an idle worker loses nothing by taking it; the pin stays, so a burst does not move the
session); the session is pinned anew when its worker is gone. Spilling to a merely less
busy worker was measured to make overload worse: every spilled window misses both
workers' caches (20 sessions on two CPU workers: 0.119 CPU s per media s against 0.090 at
16). Results never depend on the choice (caches only save work).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple


class WorkerLoad(NamedTuple):
    free: int  # credit not in use
    sessions: int  # sessions pinned to it
    idle: bool = False  # nothing in flight


def choose_worker(pinned: str | None, workers: Mapping[str, WorkerLoad]) -> tuple[str | None, bool]:
    """(the worker for the session's next window or None if none has credit, whether to pin the session to it)."""
    if pinned is not None and pinned in workers and workers[pinned].free > 0:
        return pinned, False
    free = {wid: load for wid, load in workers.items() if load.free > 0}
    if not free:
        return None, False
    if pinned is not None and pinned in workers:  # its worker is busy: only an idle one takes the window
        idle = [wid for wid, load in free.items() if load.idle]
        return (min(idle, key=lambda wid: (free[wid].sessions, wid)) if idle else None), False
    return min(free, key=lambda wid: (free[wid].sessions, -free[wid].free, wid)), True
