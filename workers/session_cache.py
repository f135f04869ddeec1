"""Per-worker caches of per-frame work, keyed by session and media time.

A session's windows overlap (8 s every 3 s), so each frame is in two or three windows.
Work that depends on one frame only (its grey thumbnail, its face record) is kept per
session and frame time (milliseconds) and reused by the later windows on the same
worker; a worker that never saw the session computes it again (the result is the same:
the cache saves time, never changes an answer). Sessions are evicted least recently
used first, and dropped as soon as the sequencer says a session has ended.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

E = TypeVar("E")


def time_key(t: float) -> int:
    """A frame's cache key: its media time in whole milliseconds."""
    return int(round(float(t) * 1000))


def drop_keys_before(entries: dict[int, object], t: float) -> None:
    """Remove the entries keyed by a frame time (:func:`time_key`) before media time ``t``."""
    cutoff = time_key(t)
    for key in [k for k in entries if k < cutoff]:
        entries.pop(key, None)


class SessionCache(Generic[E]):
    """session id -> an entry made by ``new_entry``; LRU over at most ``max_sessions`` sessions."""

    def __init__(self, new_entry: Callable[[], E], max_sessions: int = 64) -> None:
        self._new_entry = new_entry
        self._sessions: OrderedDict[str, E] = OrderedDict()
        self.max_sessions = max_sessions
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def session(self, sid: str) -> E:
        with self._lock:
            entry = self._sessions.get(sid)
            if entry is None:
                entry = self._sessions[sid] = self._new_entry()
                while len(self._sessions) > self.max_sessions:
                    self._sessions.popitem(last=False)
            else:
                self._sessions.move_to_end(sid)
            return entry

    def forget(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def __contains__(self, sid: str) -> bool:
        return sid in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class FrameTimeCache(SessionCache[dict[int, E]]):
    """session -> frame time (ms) -> value."""

    def __init__(self, max_sessions: int = 64) -> None:
        super().__init__(dict, max_sessions)

    def drop_before(self, sid: str, t: float) -> None:
        """Forget a session's frames before media time ``t`` (a session's windows come in time order,
        so frames before the start of its newest window are not asked for again; if they are, they
        are computed again)."""
        if sid in self:
            drop_keys_before(self.session(sid), t)
