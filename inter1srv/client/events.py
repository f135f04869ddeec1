"""Typed server events of the Inter-1 Streaming API (PROTOCOL.md, 'Server events').

:func:`parse_event` turns one envelope (a JSON text frame, or one line of a
stored timeline) into a dataclass per event type; an unknown type becomes
:class:`UnknownEvent`.  Parsing is lenient: a missing field is ``None`` (or
empty), never an exception, and the whole envelope stays in ``raw``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from inter1srv.protocol.constants import CLOSE_CODES


@dataclass(frozen=True)
class Range:
    """A span of session media seconds."""

    start: float
    end: float


@dataclass(frozen=True)
class Cue:
    """One measured cue cited as evidence for a signal."""

    modality: str
    cue: str
    value: float
    start: float
    end: float
    extra: dict = field(default_factory=dict, compare=False)  # cue-specific measurements (rate_hz, ...)


@dataclass(frozen=True)
class CqiWindow:
    """CQI values (0-100) of one window of media."""

    start: float
    end: float
    values: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Fields every envelope has; ``raw`` is the whole envelope as received."""

    type: str
    t: float = 0.0
    timestamp: str | None = None
    correlation_id: str | None = None
    implicit: bool = False
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def data(self) -> dict:
        data = self.raw.get("data")
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True, kw_only=True)
class SessionReady(Event):
    session_idle_timeout_seconds: int | None = None
    session_max_duration_seconds: int | None = None
    max_segment_duration_seconds: float | None = None
    min_segment_size_bytes: int | None = None
    max_segment_size_bytes: int | None = None
    supported_session_config_options: dict = field(default_factory=dict)
    session_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class SessionUpdated(Event):
    include: list[str] = field(default_factory=list)
    goal_dimensions: list[str] | None = None
    model: Any = None


@dataclass(frozen=True, kw_only=True)
class _SignalState(Event):
    signal_type: str = ""
    start: float | None = None
    probability: str | None = None
    probability_score: float | None = None
    rationale: str | None = None
    modality: list[str] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class SignalDetected(_SignalState):
    """A signal became active."""


@dataclass(frozen=True, kw_only=True)
class SignalUpdated(_SignalState):
    """An active signal's band, rationale or modalities changed."""


@dataclass(frozen=True, kw_only=True)
class SignalEnded(Event):
    signal_type: str = ""
    end: float | None = None


@dataclass(frozen=True, kw_only=True)
class EngagementUpdated(Event):
    state: str | None = None
    start: float | None = None


@dataclass(frozen=True, kw_only=True)
class ConversationQualityUpdated(Event):
    overall: dict[str, float] | None = None
    timeline: list[CqiWindow] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class FeedbackGenerated(Event):
    feedback: str = ""


@dataclass(frozen=True, kw_only=True)
class CoverageDropped(Event):
    ranges: list[Range] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class CoverageDegraded(Event):
    ranges: list[Range] = field(default_factory=list)
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class SessionClosing(Event):
    max_drain_seconds: int | None = None


@dataclass(frozen=True, kw_only=True)
class SessionEnded(Event):
    reason: str | None = None
    billed_seconds: float | None = None
    analyzed_ranges: list[Range] = field(default_factory=list)
    dropped_ranges: list[Range] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(Event):
    code: str = ""
    message: str = ""
    link: str | None = None
    segment: int | None = None

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code this error leads to (None: the session stays open)."""
        return CLOSE_CODES.get(self.code)

    @property
    def closes_session(self) -> bool:
        return self.close_code is not None


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """An event type this client does not know; see ``data`` / ``raw``."""


EVENT_CLASSES: dict[str, type[Event]] = {
    "session.ready": SessionReady,
    "session.updated": SessionUpdated,
    "signal.detected": SignalDetected,
    "signal.updated": SignalUpdated,
    "signal.ended": SignalEnded,
    "engagement.updated": EngagementUpdated,
    "conversation_quality.updated": ConversationQualityUpdated,
    "feedback.generated": FeedbackGenerated,
    "coverage.dropped": CoverageDropped,
    "coverage.degraded": CoverageDegraded,
    "session.closing": SessionClosing,
    "session.ended": SessionEnded,
    "error": ErrorEvent,
}

_RANGE_FIELDS = {"ranges", "analyzed_ranges", "dropped_ranges"}


def _ranges(value: Any) -> list[Range]:
    out = []
    for item in value or []:
        if isinstance(item, dict):
            out.append(Range(_num(item.get("start")), _num(item.get("end"))))
        elif isinstance(item, list | tuple) and len(item) == 2:
            out.append(Range(_num(item[0]), _num(item[1])))
    return out


_CUE_FIELDS = ("modality", "cue", "value", "start", "end")


def _cues(value: Any) -> list[Cue]:
    return [
        Cue(str(c.get("modality", "")), str(c.get("cue", "")), _num(c.get("value")), _num(c.get("start")),
            _num(c.get("end")), {k: v for k, v in c.items() if k not in _CUE_FIELDS})
        for c in value or [] if isinstance(c, dict)
    ]


def _cqi_windows(value: Any) -> list[CqiWindow]:
    return [
        CqiWindow(_num(w.get("start")), _num(w.get("end")), dict(w.get("values") or {}))
        for w in value or [] if isinstance(w, dict)
    ]


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _convert(name: str, value: Any) -> Any:
    if name in _RANGE_FIELDS:
        return _ranges(value)
    if name == "cues":
        return _cues(value)
    if name == "timeline":
        return _cqi_windows(value)
    if name == "modality":
        return list(value or [])
    return value


_BASE_FIELDS = set(Event.__dataclass_fields__)


def parse_event(message: str | bytes | dict) -> Event:
    """One envelope (JSON text or an already decoded dict) as a typed event."""
    envelope = json.loads(message) if isinstance(message, str | bytes | bytearray) else message
    if not isinstance(envelope, dict):
        raise ValueError("an event envelope must be a JSON object")
    etype = str(envelope.get("type", ""))
    cls = EVENT_CLASSES.get(etype, UnknownEvent)
    data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
    kwargs: dict[str, Any] = {}
    for name in cls.__dataclass_fields__:
        if name not in _BASE_FIELDS and data.get(name) is not None:
            kwargs[name] = _convert(name, data[name])
    t = envelope.get("t")
    return cls(
        type=etype,
        t=float(t) if isinstance(t, int | float) else 0.0,
        timestamp=envelope.get("timestamp"),
        correlation_id=envelope.get("correlation_id"),
        implicit=bool(envelope.get("implicit", False)),
        raw=envelope,
        **kwargs,
    )
