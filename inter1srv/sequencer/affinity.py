"""Which worker gets a session's next window (sans-I/O).

Workers keep per-session caches (face frames, decoded speech: ``workers.baseline``), and
windows overlap (8 s every 3 s), so a session's windows should go to the worker that saw
its previous ones. On two CPU workers, windows scattered over both cost 0.100 CPU s per
media s per session at 16 sessions against 0.080 for one worker, and held no more sessions
(``perf/REPORT.md``, "Two workers with session affinity").

- A session is pinned to the worker with the fewest pinned sessions (all workers count,
  busy or not) when its first window is dispatched, and pinned anew when its worker is
  gone or holds two sessions more than the least loaded one (a worker that joined or
  restarted takes sessions over one window at a time).
- Its windows go to that worker while it has credit. Otherwise a window spills to a worker
  with nothing in flight (an idle worker loses nothing by taking it), and once it has waited
  ``overdue`` (the caller's limit) to any worker with credit, so a slow or stuck worker
  delays a window but does not let it run into the live deadline. Spilling to any less busy
  worker at once was measured to make overload worse: every spilled window misses both
  workers' caches (0.119 CPU s per media s at 20 sessions against 0.086 with the pin held).

Results never depend on the choice: caches only save work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple


class WorkerLoad(NamedTuple):
    free: int  # credit not in use
    sessions: int  # sessions pinned to it
    idle: bool = False  # nothing in flight


def choose_worker(pinned: str | None, workers: Mapping[str, WorkerLoad], *,
                  overdue: bool = False) -> tuple[str | None, str | None]:
    """(the worker for the session's next window, or None: let it wait; the session's pin after this)."""
    if not workers:
        return None, pinned
    least = min(workers, key=lambda wid: (workers[wid].sessions, -workers[wid].free, wid))
    pin = pinned
    if pin not in workers or workers[pin].sessions - workers[least].sessions > 1:
        pin = least
    if workers[pin].free > 0:
        return pin, pin
    free = {wid: load for wid, load in workers.items() if load.free > 0}
    idle = [wid for wid, load in free.items() if load.idle]
    if idle:
        return min(idle, key=lambda wid: (free[wid].sessions, wid)), pin
    if overdue and free:
        return max(free, key=lambda wid: (free[wid].free, -free[wid].sessions, wid)), pin
    return None, pin
