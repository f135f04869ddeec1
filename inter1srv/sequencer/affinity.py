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
  with nothing in flight (an idle worker loses nothing by taking it), or to any worker with
  credit when its own worker is stalled (windows in flight, none finished for twice the live
  deadline: hung, or far slower than a batch takes), so a stuck worker's sessions are served
  again before the watchdog replaces it. Spilling more eagerly was measured to make overload
  worse, since every spilled window misses both workers' caches: to any less busy worker,
  0.119 CPU s per media s at 20 sessions against 0.086 with the pin held; every window that
  waited 4 s, 185 s shed at 28 sessions; from a worker that finished nothing for 4 s (a busy
  worker's batch can take that long), 0.111 and p99 ratio 1.01 at 20.

Results never depend on the choice: caches only save work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple


class WorkerLoad(NamedTuple):
    free: int  # credit not in use
    sessions: int  # sessions pinned to it
    idle: bool = False  # nothing in flight
    stalled: bool = False  # windows in flight and none finished for a while


def choose_worker(pinned: str | None, workers: Mapping[str, WorkerLoad]) -> tuple[str | None, str | None]:
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
    if workers[pin].stalled and free:
        return max(free, key=lambda wid: (free[wid].free, -free[wid].sessions, wid)), pin
    return None, pin
