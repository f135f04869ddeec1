"""A stored session timeline (JSONL of envelopes) folded into what a picture needs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from inter1srv.client.events import (
    ConversationQualityUpdated,
    CoverageDegraded,
    CoverageDropped,
    EngagementUpdated,
    ErrorEvent,
    Event,
    FeedbackGenerated,
    SessionEnded,
    SessionReady,
    SignalDetected,
    SignalEnded,
    SignalUpdated,
    parse_event,
)
from inter1srv.protocol.constants import SIGNALS


@dataclass
class Band:
    """A stretch of one signal episode at one probability band."""

    start: float
    end: float
    band: str
    score: float
    rationale: str = ""


@dataclass
class Episode:
    """One signal from ``signal.detected`` to its ``signal.ended``."""

    signal: str
    start: float
    end: float | None = None
    bands: list[Band] = field(default_factory=list)
    rationale: str = ""
    implicit_end: bool = False

    @property
    def peak(self) -> Band:
        return max(self.bands, key=lambda b: b.score)


@dataclass
class Timeline:
    """Everything the report draws, in media seconds."""

    session_id: str | None = None
    duration: float = 0.0
    episodes: list[Episode] = field(default_factory=list)
    engagement: list[tuple[float, float, str]] = field(default_factory=list)
    cqi_windows: list[tuple[float, float, dict[str, float]]] = field(default_factory=list)
    cqi_overall: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    dropped: list[tuple[float, float]] = field(default_factory=list)
    degraded: list[tuple[float, float, str]] = field(default_factory=list)
    feedback: list[tuple[float, str]] = field(default_factory=list)
    errors: list[tuple[float, str, str]] = field(default_factory=list)
    ended: SessionEnded | None = None

    @property
    def signals(self) -> list[str]:
        """Signals that occurred, in the protocol's order."""
        seen = {e.signal for e in self.episodes}
        return [s for s in SIGNALS if s in seen] + sorted(seen - set(SIGNALS))


def load_events(path: str | Path) -> list[Event]:
    """The typed events of a JSONL timeline (blank lines skipped)."""
    events = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            events.append(parse_event(json.loads(line)))
    return events


def build(events: list[Event]) -> Timeline:
    """Pair signal starts/updates/ends, collect engagement, CQI, coverage and feedback."""
    tl = Timeline()
    active: dict[str, Episode] = {}
    engagement: list[tuple[float, str]] = []
    for ev in events:
        tl.duration = max(tl.duration, ev.t)
        if isinstance(ev, SessionReady):
            tl.session_id = ev.session_id
        elif isinstance(ev, SignalDetected):
            ep = Episode(ev.signal_type, ev.start if ev.start is not None else ev.t, rationale=ev.rationale or "")
            ep.bands.append(Band(ep.start, ep.start, ev.probability or "low", ev.probability_score or 0.0,
                                 ev.rationale or ""))
            active[ev.signal_type] = ep
            tl.episodes.append(ep)
        elif isinstance(ev, SignalUpdated) and ev.signal_type in active:
            ep = active[ev.signal_type]
            at = max(ev.t, ep.bands[-1].start)
            ep.bands[-1].end = at
            ep.bands.append(Band(at, at, ev.probability or ep.bands[-1].band, ev.probability_score or 0.0,
                                 ev.rationale or ""))
            ep.rationale = ev.rationale or ep.rationale
        elif isinstance(ev, SignalEnded) and ev.signal_type in active:
            ep = active.pop(ev.signal_type)
            ep.end = ev.end if ev.end is not None else ev.t
            ep.implicit_end = ev.implicit
            ep.bands[-1].end = ep.end
        elif isinstance(ev, EngagementUpdated):
            engagement.append((ev.start if ev.start is not None else ev.t, ev.state or "neutral"))
        elif isinstance(ev, ConversationQualityUpdated):
            tl.cqi_windows.extend((w.start, w.end, w.values) for w in ev.timeline)
            if ev.overall:
                tl.cqi_overall.append((ev.t, ev.overall))
        elif isinstance(ev, CoverageDropped):
            tl.dropped.extend((r.start, r.end) for r in ev.ranges)
        elif isinstance(ev, CoverageDegraded):
            tl.degraded.extend((r.start, r.end, ev.reason or "") for r in ev.ranges)
        elif isinstance(ev, FeedbackGenerated):
            tl.feedback.append((ev.t, ev.feedback))
        elif isinstance(ev, ErrorEvent):
            tl.errors.append((ev.t, ev.code, ev.message))
        elif isinstance(ev, SessionEnded):
            tl.ended = ev
            tl.dropped.extend((r.start, r.end) for r in ev.dropped_ranges)
            tl.duration = max([tl.duration] + [r.end for r in ev.analyzed_ranges])
    for ep in active.values():  # never ended (a truncated file): open to the end
        ep.end = tl.duration
        ep.bands[-1].end = tl.duration
    tl.dropped = _union(tl.dropped)
    for i, (start, state) in enumerate(engagement):
        end = engagement[i + 1][0] if i + 1 < len(engagement) else tl.duration
        if end > start:
            tl.engagement.append((start, end, state))
    return tl


def load(path: str | Path) -> Timeline:
    return build(load_events(path))


def _union(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
