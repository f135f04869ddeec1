"""Typed events: every server event type parses to its dataclass; unknown and partial ones do not fail."""

import json

import pytest

from inter1srv.client import (
    EVENT_CLASSES,
    ConversationQualityUpdated,
    CoverageDropped,
    Cue,
    ErrorEvent,
    Range,
    SessionEnded,
    SessionReady,
    SignalDetected,
    SignalEnded,
    UnknownEvent,
    describe,
    parse_event,
)
from inter1srv.protocol.envelope import build_envelope, error_data

VALUES = {"quality_index": 60.0, "clarity": 70.0, "authority": 55.0, "energy": 65.0, "rapport": 50.0,
          "learning": 50.0}
SIGNAL = {"signal_type": "confidence", "start": 2.0, "probability": "high", "probability_score": 0.78,
          "rationale": "steady voice", "modality": ["paraverbal"],
          "cues": [{"modality": "paraverbal", "cue": "loudness", "value": -18.0, "start": 2.0, "end": 6.0}]}
SAMPLES = {
    "session.ready": {"session_idle_timeout_seconds": 30, "session_max_duration_seconds": 3600,
                      "max_segment_duration_seconds": None, "min_segment_size_bytes": 1,
                      "max_segment_size_bytes": 1 << 25, "session_id": "sess_1",
                      "supported_session_config_options": {"include": [], "goal_dimensions": [], "model": None}},
    "session.updated": {"include": ["conversation_quality_overall"], "goal_dimensions": None, "model": None},
    "signal.detected": SIGNAL,
    "signal.updated": {**SIGNAL, "probability": "medium", "probability_score": 0.7},
    "signal.ended": {"signal_type": "confidence", "end": 9.5},
    "engagement.updated": {"state": "engaged", "start": 0.0},
    "conversation_quality.updated": {"overall": VALUES, "timeline": [{"start": 0.0, "end": 8.0, "values": VALUES}]},
    "feedback.generated": {"feedback": "Speak up a little."},
    "coverage.dropped": {"ranges": [{"start": 3.0, "end": 6.0}]},
    "coverage.degraded": {"ranges": [{"start": 1.0, "end": 2.0}], "reason": "video_gap"},
    "session.closing": {"max_drain_seconds": 60},
    "session.ended": {"reason": "client_shutdown", "billed_seconds": 20.0,
                      "analyzed_ranges": [{"start": 0.0, "end": 20.0}], "dropped_ranges": []},
    "error": error_data("ih5004", "bad WebM", segment=3),
}


def _env(etype: str, t: float = 1.0) -> dict:
    return build_envelope(etype, SAMPLES[etype], t=t, correlation_id="c-1")


@pytest.mark.parametrize("etype", sorted(SAMPLES))
def test_every_type_parses_to_its_class_with_the_data_fields(etype):
    env = _env(etype)
    event = parse_event(json.dumps(env))
    assert type(event) is EVENT_CLASSES[etype]
    assert event.type == etype and event.t == 1.0 and event.correlation_id == "c-1"
    assert event.raw == env and event.data == SAMPLES[etype]
    for name, value in SAMPLES[etype].items():
        if name in type(event).__dataclass_fields__ and not isinstance(value, list | dict):
            assert getattr(event, name) == value, name
    assert describe(event).startswith(f"[1.0s] {etype}")


def test_the_event_classes_cover_every_type_the_protocol_names():
    assert set(EVENT_CLASSES) == set(SAMPLES)


def test_nested_values_become_typed():
    sig = parse_event(_env("signal.detected"))
    assert isinstance(sig, SignalDetected)
    assert sig.cues == [Cue("paraverbal", "loudness", -18.0, 2.0, 6.0)] and sig.modality == ["paraverbal"]
    nod = parse_event({"type": "signal.updated", "data": {"cues": [
        {"modality": "nonverbal", "cue": "head_nod", "value": 3, "start": 1, "end": 2, "rate_hz": 1.8}]}})
    assert nod.cues[0].extra == {"rate_hz": 1.8} and nod.cues[0].value == 3.0
    cq = parse_event(_env("conversation_quality.updated"))
    assert isinstance(cq, ConversationQualityUpdated)
    assert cq.overall == VALUES and cq.timeline[0].end == 8.0 and cq.timeline[0].values["clarity"] == 70.0
    dropped = parse_event(_env("coverage.dropped"))
    assert isinstance(dropped, CoverageDropped) and dropped.ranges == [Range(3.0, 6.0)]
    ended = parse_event(_env("session.ended"))
    assert isinstance(ended, SessionEnded) and ended.analyzed_ranges == [Range(0.0, 20.0)]
    ready = parse_event(_env("session.ready"))
    assert isinstance(ready, SessionReady) and ready.session_id == "sess_1"


def test_error_events_know_their_close_code():
    err = parse_event(_env("error"))
    assert isinstance(err, ErrorEvent) and err.segment == 3 and err.close_code == 1007 and err.closes_session
    stays = parse_event(build_envelope("error", error_data("ih6001", "bad config"), t=0, correlation_id="c"))
    assert stays.close_code is None and not stays.closes_session


def test_unknown_types_and_missing_fields_do_not_raise():
    unknown = parse_event({"type": "future.event", "t": 4, "data": {"x": 1}})
    assert isinstance(unknown, UnknownEvent) and unknown.data == {"x": 1} and unknown.t == 4.0
    bare = parse_event({"type": "signal.ended"})
    assert isinstance(bare, SignalEnded) and bare.end is None and bare.t == 0.0
    odd = parse_event({"type": "coverage.dropped", "data": {"ranges": [[1, 2], "junk"]}})
    assert odd.ranges == [Range(1.0, 2.0)]
    with pytest.raises(ValueError):
        parse_event("[1, 2]")


def test_implicit_flag_of_stored_timelines():
    env = {**_env("signal.ended"), "implicit": True}
    event = parse_event(env)
    assert event.implicit and describe(event).endswith("(implicit)")


def test_readable_lines():
    assert describe(parse_event(_env("signal.detected", 12.5))) == \
        "[12.5s] signal.detected confidence high (0.78): steady voice"
    assert describe(parse_event(_env("coverage.dropped"))) == "[1.0s] coverage.dropped 3.0-6.0s"
    assert describe(parse_event(_env("error"))) == "[1.0s] error ih5004: bad WebM (segment 3)"
    assert describe(parse_event(_env("session.ended"))) == \
        "[1.0s] session.ended client_shutdown, billed 20.0 s, dropped 0.0 s"
    assert "QI 60" in describe(parse_event(_env("conversation_quality.updated")))
