"""One readable line per event, e.g. ``[12.5s] signal.detected confidence high (0.78): ...``."""

from __future__ import annotations

from .events import (
    ConversationQualityUpdated,
    CoverageDegraded,
    CoverageDropped,
    EngagementUpdated,
    ErrorEvent,
    Event,
    FeedbackGenerated,
    Range,
    SessionClosing,
    SessionEnded,
    SessionReady,
    SessionUpdated,
    SignalDetected,
    SignalEnded,
    SignalUpdated,
)

_DIMENSIONS = ("clarity", "authority", "energy", "rapport", "learning")


def _ranges(ranges: list[Range]) -> str:
    return ", ".join(f"{r.start:.1f}-{r.end:.1f}s" for r in ranges) or "none"


def _scores(values: dict[str, float]) -> str:
    head = f"QI {values.get('quality_index', 0):.0f}"
    dims = " ".join(f"{d} {values[d]:.0f}" for d in _DIMENSIONS if d in values)
    return f"{head} ({dims})" if dims else head


def _detail(event: Event) -> str:
    if isinstance(event, SignalDetected | SignalUpdated):
        score = f" ({event.probability_score:.2f})" if event.probability_score is not None else ""
        why = f": {event.rationale}" if event.rationale else ""
        return f"{event.signal_type} {event.probability}{score}{why}"
    if isinstance(event, SignalEnded):
        return f"{event.signal_type}" + (" (implicit)" if event.implicit else "")
    if isinstance(event, EngagementUpdated):
        return f"{event.state}"
    if isinstance(event, ConversationQualityUpdated):
        parts = []
        if event.timeline:
            w = event.timeline[-1]
            parts.append(f"window {w.start:.1f}-{w.end:.1f}s {_scores(w.values)}")
        if event.overall:
            parts.append(f"overall {_scores(event.overall)}")
        return "; ".join(parts)
    if isinstance(event, FeedbackGenerated):
        return event.feedback
    if isinstance(event, CoverageDropped):
        return _ranges(event.ranges)
    if isinstance(event, CoverageDegraded):
        return f"{event.reason} {_ranges(event.ranges)}"
    if isinstance(event, SessionReady):
        sid = f"{event.session_id} " if event.session_id else ""
        return (f"{sid}(idle timeout {event.session_idle_timeout_seconds} s, "
                f"max duration {event.session_max_duration_seconds} s)")
    if isinstance(event, SessionUpdated):
        goals = ", ".join(event.goal_dimensions) if event.goal_dimensions is not None else "off"
        return f"include {', '.join(event.include) or 'none'}; feedback {goals}"
    if isinstance(event, SessionClosing):
        return f"draining (at most {event.max_drain_seconds} s)"
    if isinstance(event, SessionEnded):
        billed = f"{event.billed_seconds:.1f}" if event.billed_seconds is not None else "?"
        dropped = sum(r.end - r.start for r in event.dropped_ranges)
        return f"{event.reason}, billed {billed} s, dropped {dropped:.1f} s"
    if isinstance(event, ErrorEvent):
        segment = f" (segment {event.segment})" if event.segment is not None else ""
        return f"{event.code}: {event.message}{segment}"
    return str(event.data)[:200]


def describe(event: Event) -> str:
    """The event as one line of text."""
    detail = _detail(event)
    return f"[{event.t:.1f}s] {event.type}" + (f" {detail}" if detail else "")
