"""A session's window schedule, shedding and in-order resolution (sans-I/O).

Windows are ``window`` seconds long and start every ``hop`` seconds of media
time; a final shorter-or-shifted window covers the tail at end of stream. With
``lead_in``, growing windows [0, hop), [0, 2 hop), ... come before the first
full one, so a session's first events go out after one hop of media instead of
a whole window (they are redundant with the first full window, so under backlog
they are the first to be shed).
Results are resolved strictly in window order. Each delivered window commits
the part of the timeline after the frontier (its newest ``hop`` seconds, or
more when neighbours were shed); seconds no delivered window covers are
reported dropped. Billing is the union of delivered windows' coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .ranges import EPS, Range, covers, union


class WindowState(Enum):
    QUEUED = "queued"
    INFLIGHT = "inflight"
    DONE = "done"
    SHED = "shed"  # never analysed on purpose (backlog)
    FAILED = "failed"  # analysis failed or was cancelled


@dataclass
class Window:
    index: int
    start: float
    end: float
    final: bool = False
    state: WindowState = WindowState.QUEUED
    result: dict | None = None
    attempts: int = 0
    dispatched_at: float | None = None
    ready_at: float = 0.0  # wall time it became ready
    media_arrived_at: float = 0.0  # wall time its last media arrived

    @property
    def pending(self) -> bool:
        return self.state in (WindowState.QUEUED, WindowState.INFLIGHT)


@dataclass
class Commit:
    """Deliver ``window``'s results for media time [start, end)."""

    window: Window
    start: float
    end: float


@dataclass
class Dropped:
    start: float
    end: float


@dataclass
class SessionSchedule:
    window: float = 8.0
    hop: float = 3.0
    lead_in: bool = False
    windows: list[Window] = field(default_factory=list)
    media_end: float = 0.0
    closed: bool = False
    frontier: float = 0.0  # everything before it is committed or dropped
    _next_emit: int = 0
    delivered: list[Range] = field(default_factory=list)
    dropped: list[Range] = field(default_factory=list)

    def media_advanced(self, media_end: float, now: float = 0.0) -> list[Window]:
        """Media is available up to ``media_end``: return the windows that became ready."""
        if self.closed:
            return []
        self.media_end = max(self.media_end, media_end)
        ready = []
        while True:
            start, end = self._span(len(self.windows))
            if end > self.media_end + EPS:
                return ready
            ready.append(self._add(start, end, False, now))

    @property
    def lead_count(self) -> int:
        """Growing windows before the first full one (``lead_in``): [0, hop), [0, 2 hop), ..."""
        if not self.lead_in:
            return 0
        n = 0
        while (n + 1) * self.hop < self.window - EPS:
            n += 1
        return n

    def _span(self, index: int) -> tuple[float, float]:
        lead = self.lead_count
        if index < lead:
            return 0.0, (index + 1) * self.hop
        start = (index - lead) * self.hop
        return start, start + self.window

    def close(self, media_end: float, now: float = 0.0) -> list[Window]:
        """End of stream: schedule the windows still missing, including a tail window."""
        ready = self.media_advanced(media_end, now)
        self.closed = True
        self.media_end = max(self.media_end, media_end)
        last_end = self.windows[-1].end if self.windows else 0.0
        if self.media_end > last_end + EPS:
            start = max(0.0, self.media_end - self.window)
            ready.append(self._add(start, self.media_end, True, now))
        return ready

    def _add(self, start: float, end: float, final: bool, now: float) -> Window:
        w = Window(len(self.windows), start, end, final, ready_at=now, media_arrived_at=now)
        self.windows.append(w)
        return w

    # -- outcomes ---------------------------------------------------------
    def complete(self, index: int, result: dict) -> bool:
        """Record a result; False when the window was already shed or failed (late result)."""
        w = self.windows[index]
        if w.state not in (WindowState.QUEUED, WindowState.INFLIGHT):
            return False
        w.state, w.result = WindowState.DONE, result
        return True

    def fail(self, index: int) -> None:
        w = self.windows[index]
        if w.pending:
            w.state = WindowState.FAILED

    def shed(self, index: int) -> None:
        w = self.windows[index]
        if w.state == WindowState.QUEUED:
            w.state = WindowState.SHED

    def cancel_all(self) -> list[Window]:
        """Abrupt end: every pending window is cancelled (never billed)."""
        cancelled = [w for w in self.unresolved() if w.pending]
        for w in cancelled:
            w.state = WindowState.FAILED
        return cancelled

    # -- shedding ---------------------------------------------------------
    def unresolved(self) -> list[Window]:
        """Windows not yet emitted or dropped (the only ones whose state can still change)."""
        return self.windows[self._next_emit:]

    def _recent(self) -> list[Window]:
        # windows before the emission head that can still overlap unresolved ones
        lookback = int(self.window // self.hop) + 1 + self.lead_count
        return self.windows[max(0, self._next_emit - lookback):]

    def redundant(self, w: Window) -> bool:
        """True when other delivered or still-pending windows cover all of ``w``'s seconds."""
        others = [(o.start, o.end) for o in self._recent() if o is not w and (o.pending or o.state == WindowState.DONE)]
        return covers(others, w.start, w.end)

    def choose_sheds(self, max_queued: int) -> list[Window]:
        """Windows to shed so that at most ``max_queued`` stay queued: redundant first, then oldest."""
        chosen: list[Window] = []
        queued = [w for w in self.unresolved() if w.state == WindowState.QUEUED and not w.final]
        while len(queued) > max_queued:
            victim = next((w for w in queued if self.redundant(w)), None) or queued[0]
            self.shed(victim.index)
            chosen.append(victim)
            queued.remove(victim)
        return chosen

    # -- in-order resolution ----------------------------------------------
    def resolve(self) -> list[Commit | Dropped]:
        """Everything that can now be emitted, in media order."""
        out: list[Commit | Dropped] = []
        while self._next_emit < len(self.windows):
            w = self.windows[self._next_emit]
            if w.pending:
                break
            if w.state == WindowState.DONE:
                if w.start > self.frontier + EPS:
                    out.append(self._drop(self.frontier, w.start))
                if w.end > self.frontier + EPS:
                    out.append(Commit(w, max(self.frontier, w.start), w.end))
                    self.frontier = w.end
                self.delivered.append((w.start, w.end))
            else:  # shed or failed: the seconds up to the next window's start are lost
                nxt = self.windows[self._next_emit + 1] if self._next_emit + 1 < len(self.windows) else None
                if nxt is None and not self.closed:
                    break  # the next window is not known yet
                limit = nxt.start if nxt is not None else self.media_end
                if limit > self.frontier + EPS:
                    out.append(self._drop(self.frontier, limit))
            self._next_emit += 1
        if self.closed and self._next_emit >= len(self.windows) and self.media_end > self.frontier + EPS:
            out.append(self._drop(self.frontier, self.media_end))
        return out

    def _drop(self, start: float, end: float) -> Dropped:
        self.dropped.append((start, end))
        self.frontier = end
        return Dropped(start, end)

    @property
    def finished(self) -> bool:
        return self.closed and self._next_emit >= len(self.windows) and self.frontier >= self.media_end - EPS

    @property
    def billed_ranges(self) -> list[Range]:
        return union(self.delivered)

    def queued(self) -> list[Window]:
        return [w for w in self.unresolved() if w.state == WindowState.QUEUED]
