import re

from inter1srv.protocol.envelope import build_envelope


def test_envelope_has_timestamp_correlation_and_flat_signal_fields():
    data = {"signal_type": "agreement", "start": 3.0, "probability": "high", "probability_score": 0.81,
            "rationale": "nodded", "modality": ["nonverbal"], "cues": []}
    env = build_envelope("signal.detected", data, t=3.0, correlation_id="c-1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", env["timestamp"])
    assert env["correlation_id"] == "c-1" and env["t"] == 3.0
    assert (env["signal"], env["probability"], env["rationale"]) == ("agreement", 0.81, "nodded")
    line = f"[{env['t']}s] {env['signal']} started (p={env['probability']:.2f})"
    assert line == "[3.0s] agreement started (p=0.81)"


def test_flat_fields_for_other_events():
    assert build_envelope("engagement.updated", {"state": "engaged", "start": 1}, t=1, correlation_id="c")["state"] == "engaged"
    values = {"quality_index": 60, "clarity": 60, "authority": 60, "energy": 60, "rapport": 60, "learning": 60}
    cq = build_envelope("conversation_quality.updated", {"timeline": [{"start": 0, "end": 8, "values": values}]}, t=8, correlation_id="c")
    assert cq["scores"] == values
    assert build_envelope("feedback.generated", {"feedback": "Slow down."}, t=8, correlation_id="c")["text"] == "Slow down."
    err = build_envelope("error", {"code": "ih4000", "message": "m", "link": None, "segment": None}, t=0, correlation_id="c")
    assert (err["code"], err["message"]) == ("ih4000", "m")
