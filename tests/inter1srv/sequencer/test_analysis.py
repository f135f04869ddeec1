"""SessionAnalysis: window results -> protocol events (hand-built results, and one from the real model)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from inter1srv.sequencer.analysis import (
    AnalysisSettings,
    Event,
    SessionAnalysis,
    clip_degraded,
    rationale_for,
)
from workers.contract import CQI_DIMENSIONS, MODALITIES, SIGNAL_TYPES, STEP_SECONDS

STEP = STEP_SECONDS

VA = {"modality": "paraverbal", "cue": "voice_activity", "value": 0.82, "start": 0.0, "end": 8.0}
LOUD = {"modality": "paraverbal", "cue": "loudness", "value": -18.2, "start": 0.0, "end": 8.0}
PAUSE = {"modality": "paraverbal", "cue": "pause", "value": 0.9, "start": 3.0, "end": 3.9}
MOTION = {"modality": "nonverbal", "cue": "motion_energy", "value": 2.4, "start": 0.0, "end": 8.0}


def result(start: float, end: float, scores: dict[str, list[float]] | None = None, *, cues=None, drivers=None,
           cqi=None, eng=None, dis=None, evidence=1.0) -> dict:
    n = int(round((end - start) / STEP))
    times = [round(start + k * STEP, 6) for k in range(n)]
    signals = {s: [0.0] * n for s in SIGNAL_TYPES}
    for s, v in (scores or {}).items():
        assert len(v) == n
        signals[s] = list(v)
    cues = [VA, LOUD, MOTION] if cues is None else cues
    if drivers is None:
        drivers = {s: ([c["cue"] for c in cues] if max(signals[s], default=0) > 0 else []) for s in SIGNAL_TYPES}
    return {
        "start": start, "end": end, "step": STEP, "times": times, "signals": signals,
        "engagement": eng if eng is not None else signals["engagement"],
        "disengagement": dis if dis is not None else signals["disengagement"],
        "evidence": {"verbal": [0.0] * n, "paraverbal": [evidence] * n, "nonverbal": [evidence] * n},
        "cues": cues, "drivers": {s: drivers.get(s, []) for s in SIGNAL_TYPES},
        "cqi": cqi or {d: {"value": 50.0, "weight": 0.0} for d in CQI_DIMENSIONS},
        "degraded": [],
    }


def of(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.type == kind]


def assert_ordered(events: list[Event]) -> None:
    ts = [e.t for e in events]
    assert ts == sorted(ts), ts


def test_one_step_blip_does_not_fire():
    sa = SessionAnalysis()
    ev = sa.commit(result(0, 8, {"confidence": [0.1, 0.2, 0.95, 0.1] + [0.1] * 12}), 0, 8, feedback_dimensions=None)
    assert [e.type for e in ev if e.type.startswith("signal.")] == []
    assert sa.active_signals == {}


def test_sustained_run_fires_once_and_ends_after_off_run():
    sa = SessionAnalysis()
    #            0.0  0.5  1.0  1.5  2.0  2.5  3.0  3.5  4.0  4.5  5.0  5.5  6.0  6.5  7.0  7.5
    scores = [0.2, 0.2, 0.8, 0.8, 0.8, 0.8, 0.3, 0.8, 0.5, 0.8, 0.3, 0.2, 0.1, 0.1, 0.8, 0.1]
    ev = sa.commit(result(0, 8, {"confidence": scores}), 0, 8, feedback_dimensions=None)
    det, end = of(ev, "signal.detected"), of(ev, "signal.ended")
    assert len(det) == 1 and det[0].t == 1.0 and det[0].data["start"] == 1.0
    assert det[0].data["signal_type"] == "confidence" and det[0].data["probability"] == "high"
    # a single off step (3.0) and a step between thresholds (4.0) do not end it; 5.0+5.5 do
    assert len(end) == 1 and end[0].data == {"signal_type": "confidence", "end": 5.0} and end[0].t == 5.0
    assert sa.active_signals == {}  # the lone 0.8 at 7.0 did not re-fire
    assert_ordered(ev)


def test_run_across_commits_keeps_true_start_and_ordered_t():
    sa = SessionAnalysis()
    ev1 = sa.commit(result(0, 8, {"stress": [0.0] * 15 + [0.9]}), 0, 8, feedback_dimensions=None)
    assert of(ev1, "signal.detected") == []
    ev2 = sa.commit(result(3, 11, {"stress": [0.0] * 9 + [0.9] * 7}), 8, 11, feedback_dimensions=None)
    (det,) = of(ev2, "signal.detected")
    assert det.data["start"] == 7.5  # the run began in the previous slice
    assert det.t == 8.0  # stamped no earlier than what was already sent (the CQI at 8.0)
    assert_ordered(ev1 + ev2)
    assert sa.active_signals == {"stress": 7.5}


def test_a_drop_ends_active_signals_before_it_is_reported():
    sa = SessionAnalysis()
    ev1 = sa.commit(result(0, 3, {"stress": [0.9] * 6}), 0, 3, feedback_dimensions=None)
    assert sa.active_signals == {"stress": 0.0}
    ended = sa.interrupt()  # [3, 9) is dropped next: the end must precede coverage.dropped at 3.0
    assert [(e.type, e.t, e.data["end"]) for e in ended] == [("signal.ended", 3.0, 3.0)]
    ev2 = sa.commit(result(9, 17, {"stress": [0.0] * 16}), 9, 17, feedback_dimensions=None)
    assert of(ev2, "signal.ended") == [], "not ended twice"
    assert_ordered(ev1 + ended + ev2)
    assert sa.interrupt() == []


@pytest.mark.parametrize(("run", "band"), [([0.9, 0.8], "high"), ([0.7, 0.65], "medium"), ([0.6, 0.6], "medium")])
def test_detection_band_from_score(run, band):
    sa = SessionAnalysis()
    ev = sa.commit(result(0, 8, {"interest": [0.0] + run + [0.0] * 13}), 0, 8, feedback_dimensions=None)
    (det,) = of(ev, "signal.detected")
    assert det.data["probability"] == band
    assert det.data["probability_score"] == pytest.approx(sum(run) / 2, abs=1e-3)


def test_updated_only_when_band_changes():
    sa = SessionAnalysis()
    scores = [0.9, 0.8, 0.85, 0.95, 0.8, 0.9, 0.78, 0.9,  # high, fluctuating inside the band
              0.65, 0.65, 0.66, 0.62, 0.64,              # medium: one update
              0.45, 0.45, 0.45]                          # low (still above off): one update
    ev = sa.commit(result(0, 8, {"engagement": scores}), 0, 8, feedback_dimensions=None)
    ups = of(ev, "signal.updated")
    assert [u.data["probability"] for u in ups if u.data["signal_type"] == "engagement"] == ["medium", "low"]
    for u in ups:
        assert u.data["start"] == 0.0 and u.data["signal_type"] == "engagement"
    # the next window: same band, same modalities -> nothing; fewer modalities -> one update
    ev2 = sa.commit(result(3, 11, {"engagement": [0.45] * 16}), 8, 11, feedback_dimensions=None)
    assert of(ev2, "signal.updated") == []
    ev3 = sa.commit(result(6, 14, {"engagement": [0.45] * 16}, cues=[VA, LOUD]), 11, 14, feedback_dimensions=None)
    (up,) = of(ev3, "signal.updated")
    assert up.data["modality"] == ["paraverbal"] and up.data["probability"] == "low"
    assert_ordered(ev + ev2 + ev3)


def test_signal_payload_fields_and_enums():
    sa = SessionAnalysis()
    ev = sa.commit(result(0, 8, {"confidence": [0.9] * 16}, cues=[VA, LOUD, PAUSE, MOTION],
                          drivers={"confidence": ["voice_activity", "loudness", "pause"]}),
                   0, 8, feedback_dimensions=None)
    (det,) = of(ev, "signal.detected")
    d = det.data
    assert set(d) == {"signal_type", "start", "probability", "probability_score", "rationale", "modality", "cues"}
    assert d["signal_type"] in SIGNAL_TYPES and d["probability"] in ("high", "medium", "low")
    assert isinstance(d["probability_score"], float) and 0 <= d["probability_score"] <= 1
    assert d["modality"] == ["paraverbal"] and set(d["modality"]) <= set(MODALITIES)
    assert {c["cue"] for c in d["cues"]} == {"voice_activity", "loudness", "pause"}
    for c in d["cues"]:
        assert set(c) == {"modality", "cue", "value", "start", "end"}


def test_rationale_cites_only_given_cues():
    sa = SessionAnalysis()
    cues = [VA, LOUD, PAUSE, MOTION]
    ev = sa.commit(result(0, 8, {"confidence": [0.9] * 16}, cues=cues,
                          drivers={"confidence": ["voice_activity", "loudness", "pause"]}),
                   0, 8, feedback_dimensions=None)
    (det,) = of(ev, "signal.detected")
    text = det.data["rationale"]
    assert "voice active 82% of 0.0-8.0 s at -18 dBFS with 1 pause (longest 0.9 s)" in text
    assert "motion" not in text  # measured, but not a driver of confidence
    assert text.count(".") >= 1 and text.endswith(".") and "\n" not in text
    assert all(c in cues for c in det.data["cues"])
    # a window without those cues must not inherit them: the rationale says there is nothing to cite
    ev2 = sa.commit(result(3, 11, {"confidence": [0.5] * 16}, cues=[], drivers={}), 8, 11, feedback_dimensions=None)
    ups = of(ev2, "signal.updated")  # modalities changed at once, the band (-> low) two steps later
    assert [u.data["probability"] for u in ups] == ["high", "low"]
    for up in ups:
        assert up.data["cues"] == [] and "no measured cue" in up.data["rationale"]
        assert "dBFS" not in up.data["rationale"]


def test_rationale_formats_each_cue():
    cues = [
        {"modality": "paraverbal", "cue": "long_silence", "value": 6.0, "start": 14.0, "end": 20.0},
        {"modality": "nonverbal", "cue": "stillness", "value": 5.5, "start": 14.5, "end": 20.0},
        {"modality": "nonverbal", "cue": "vertical_oscillation", "value": 2.0, "start": 14.0, "end": 16.0},
        {"modality": "paraverbal", "cue": "pitch_variation", "value": 1.4, "start": 14.0, "end": 16.0},
    ]
    text = rationale_for("disengagement", cues, 14.0, 20.0, 0.9)
    assert text.startswith("Disengagement (0.90) from ")
    for part in ("no voice for 6.0 s (14.0-20.0 s)", "still for 5.5 s (14.5-20.0 s)",
                 "vertical motion oscillating at 2.0 Hz over 14.0-16.0 s", "pitch varying by 1.4 semitones"):
        assert part in text


def test_cqi_cumulative_time_weighting_and_no_evidence():
    sa = SessionAnalysis()
    assert sa.cumulative_cqi() is None
    cqi1 = {d: {"value": 50.0, "weight": 0.0} for d in CQI_DIMENSIONS}
    cqi1["clarity"] = {"value": 80.0, "weight": 1.0}
    cqi1["energy"] = {"value": 30.0, "weight": 1.0}
    (q1,) = of(sa.commit(result(0, 8, cqi=cqi1), 0, 8, feedback_dimensions=None), "conversation_quality.updated")
    assert q1.t == 8.0
    assert q1.data["timeline"] == [{"start": 0.0, "end": 8.0, "values": {
        "quality_index": 52.0, "clarity": 80.0, "authority": 50.0, "energy": 30.0, "rapport": 50.0, "learning": 50.0}}]
    cqi2 = {d: {"value": 20.0, "weight": 0.0} for d in CQI_DIMENSIONS}  # weight 0: shown as 50, ignored
    cqi2["clarity"] = {"value": 20.0, "weight": 0.5}
    (q2,) = of(sa.commit(result(3, 11, cqi=cqi2), 8, 11, feedback_dimensions=None), "conversation_quality.updated")
    assert q2.t == 11.0
    tl = q2.data["timeline"]
    assert isinstance(tl, list) and len(tl) == 1 and tl[0]["start"] == 8.0 and tl[0]["end"] == 11.0
    assert tl[0]["values"]["clarity"] == 20.0 and tl[0]["values"]["energy"] == 50.0
    overall = q2.data["overall"]
    # clarity: 8 s x weight 1 at 80, 3 s x weight 0.5 at 20
    assert overall["clarity"] == pytest.approx(round((80 * 8 + 20 * 1.5) / 9.5, 1))
    assert overall["energy"] == 30.0  # the second window had no energy evidence
    assert overall["authority"] == overall["rapport"] == overall["learning"] == 50.0
    assert overall["quality_index"] == pytest.approx(round(sum(overall[d] for d in CQI_DIMENSIONS) / 5, 1), abs=0.06)
    assert sa.cumulative_cqi() == overall


def test_cqi_without_any_evidence_is_fifty():
    sa = SessionAnalysis()
    (q,) = of(sa.commit(result(0, 8), 0, 8, feedback_dimensions=None), "conversation_quality.updated")
    assert set(q.data["overall"].values()) == {50.0}
    assert set(q.data["timeline"][0]["values"].values()) == {50.0}


def test_engagement_transitions_only():
    sa = SessionAnalysis()
    eng = [0.1] * 4 + [0.8] * 12
    ev = sa.commit(result(0, 8, eng=eng, dis=[0.0] * 16), 0, 8, feedback_dimensions=None)
    states = of(ev, "engagement.updated")
    # neutral established after 4 steps, then engaged from 2.0 s; never repeated as a heartbeat
    assert [(e.data["state"], e.data["start"], e.t) for e in states] == [("neutral", 0.0, 0.0), ("engaged", 2.0, 2.0)]
    ev = sa.commit(result(3, 11, eng=[0.8] * 10 + [0.55] * 6, dis=[0.0] * 16), 8, 11, feedback_dimensions=None)
    assert of(ev, "engagement.updated") == []  # 0.55 stays within the engaged margin
    # a 3-step dip to disengaged does not switch; a sustained one does
    dis = [0.0] * 10 + [0.9] * 3 + [0.0] * 3
    ev = sa.commit(result(6, 14, eng=[0.7] * 16, dis=dis), 11, 14, feedback_dimensions=None)
    assert of(ev, "engagement.updated") == []
    ev = sa.commit(result(9, 17, eng=[0.1] * 16, dis=[0.1] * 10 + [0.9] * 6), 14, 17, feedback_dimensions=None)
    assert [(e.data["state"], e.data["start"]) for e in of(ev, "engagement.updated")] == [("disengaged", 14.0)]
    assert sa.engagement_state == "disengaged"


def test_feedback_cadence_and_content():
    sa = SessionAnalysis(AnalysisSettings(feedback_every_windows=2))
    cqi = {d: {"value": 50.0, "weight": 0.0} for d in CQI_DIMENSIONS}
    cqi["energy"] = {"value": 20.0, "weight": 1.0}
    cqi["clarity"] = {"value": 85.0, "weight": 1.0}
    quiet = [{"modality": "paraverbal", "cue": "voice_activity", "value": 0.4, "start": 0.0, "end": 20.0},
             {"modality": "paraverbal", "cue": "loudness", "value": -31.0, "start": 0.0, "end": 20.0},
             {"modality": "nonverbal", "cue": "motion_energy", "value": 0.2, "start": 0.0, "end": 20.0}]
    fb = []
    for k in range(5):
        s, e = 3.0 * k, 3.0 * k + 8
        a = 0.0 if k == 0 else e - 3
        ev = sa.commit(result(s, e, cues=quiet, cqi=cqi), a, e, feedback_dimensions=["clarity", "energy"])
        assert_ordered(ev)
        fb += [(k, x) for x in of(ev, "feedback.generated")]
    assert [k for k, _ in fb] == [1, 3]
    for _, x in fb:
        assert x.t in (11.0, 17.0)
        text = x.data["feedback"]
        assert text.startswith("Energy")  # the weakest of the requested dimensions
        assert re.search(r"\d", text) and "-31 dBFS" in text and "little motion" in text
        assert text.count(". ") == 0 and text.endswith(".")  # one sentence
    # off -> no feedback at all
    sa2 = SessionAnalysis()
    for k in range(4):
        ev = sa2.commit(result(3.0 * k, 3.0 * k + 8, cqi=cqi), 0 if k == 0 else 3.0 * k + 5, 3.0 * k + 8,
                        feedback_dimensions=None)
        assert of(ev, "feedback.generated") == []


def test_feedback_focus_and_unmeasured_dimensions():
    cqi = {d: {"value": 50.0, "weight": 0.0} for d in CQI_DIMENSIONS}
    cqi["clarity"] = {"value": 30.0, "weight": 1.0}
    cqi["energy"] = {"value": 90.0, "weight": 1.0}
    sa = SessionAnalysis(AnalysisSettings(feedback_every_windows=1))
    (fb,) = of(sa.commit(result(0, 8, cues=[VA, LOUD, PAUSE], cqi=cqi), 0, 8, feedback_dimensions=[]),
               "feedback.generated")
    assert fb.data["feedback"].startswith("Clarity") and "1 pause, longest 0.9 s" in fb.data["feedback"]
    (fb,) = of(sa.commit(result(3, 11, cues=[VA, LOUD], cqi=cqi), 8, 11, feedback_dimensions=["rapport"]),
               "feedback.generated")
    assert "cannot be measured yet" in fb.data["feedback"] and re.search(r"\d", fb.data["feedback"])


def test_finish_ends_all_active_signals():
    sa = SessionAnalysis()
    ev = sa.commit(result(0, 8, {"engagement": [0.9] * 16, "confidence": [0.1] * 8 + [0.9] * 8}), 0, 8,
                   feedback_dimensions=None)
    assert sa.active_signals == {"confidence": 4.0, "engagement": 0.0}
    done = sa.finish(8.0)
    assert [(e.type, e.data, e.t) for e in done] == [
        ("signal.ended", {"signal_type": "confidence", "end": 8.0}, 8.0),
        ("signal.ended", {"signal_type": "engagement", "end": 8.0}, 8.0),
    ]
    assert sa.active_signals == {} and sa.finish(9.0) == []
    assert_ordered(ev + done)
    detected = {e.data["signal_type"] for e in ev if e.type == "signal.detected"}
    assert detected == {e.data["signal_type"] for e in done}


def test_gap_in_committed_media_ends_active_signals_at_last_analysed_second():
    sa = SessionAnalysis()
    sa.commit(result(0, 8, {"stress": [0.9] * 16}), 0, 8, feedback_dimensions=None)
    ev = sa.commit(result(12, 20, {"stress": [0.9] * 16}), 17, 20, feedback_dimensions=None)
    assert [(e.type, e.data.get("end", e.data.get("start")), e.t) for e in ev if e.type.startswith("signal")] == [
        ("signal.ended", 8.0, 8.0), ("signal.detected", 17.0, 17.0)]
    assert_ordered(ev)


def test_every_detection_is_paired_with_an_end_over_a_session():
    rng = np.random.default_rng(0)
    sa = SessionAnalysis()
    events: list[Event] = []
    for k in range(30):
        s, e = 3.0 * k, 3.0 * k + 8
        scores = {sig: np.clip(rng.normal(0.5, 0.3, 16), 0, 1).round(3).tolist() for sig in SIGNAL_TYPES}
        events += sa.commit(result(s, e, scores), 0.0 if k == 0 else e - 3, e, feedback_dimensions=["energy"])
    events += sa.finish(3.0 * 29 + 8)
    assert_ordered(events)
    open_: dict[str, float] = {}
    for ev in events:
        if ev.type == "signal.detected":
            assert ev.data["signal_type"] not in open_
            open_[ev.data["signal_type"]] = ev.data["start"]
        elif ev.type == "signal.ended":
            assert ev.data["end"] >= open_.pop(ev.data["signal_type"])
        elif ev.type == "signal.updated":
            assert ev.data["signal_type"] in open_
    assert open_ == {}
    states = [e.data["state"] for e in events if e.type == "engagement.updated"]
    assert all(a != b for a, b in zip(states, states[1:], strict=False))


def test_clip_degraded_helper():
    r = result(0, 8)
    r["degraded"] = [{"reason": "no_audio", "ranges": [[2.0, 8.0]]}, {"reason": "video_gap", "ranges": [[0.0, 1.5]]}]
    assert clip_degraded(r, 5.0, 8.0) == [{"reason": "no_audio", "ranges": [{"start": 5.0, "end": 8.0}]}]


def test_with_the_real_model():
    from workers.baseline import BaselineModel
    from workers.contract import WindowInput

    sr = 16_000
    t = np.arange(8 * sr) / sr
    tone = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    gate = ((t % 0.5) < 0.35) & (t < 6.0)  # syllables for 6 s, then silence
    audio = (0.05 * tone * gate + 1e-4 * np.random.default_rng(1).standard_normal(t.size)).astype(np.float32)
    frames = np.full((80, 120, 160, 3), 60, np.uint8)
    for i in range(80):  # a bright square moving left-right for 6 s, then still
        x = 60 + int(30 * np.sin(2 * np.pi * 0.6 * min(i, 60) / 10))
        frames[i, 40:80, x:x + 40] = 220
    w = WindowInput("j", "s", 0.0, 8.0, frames, np.arange(80) / 10, audio, 0.0)
    (res,) = BaselineModel().analyze([w])
    sa = SessionAnalysis()
    events = sa.commit(res, 0.0, 8.0, feedback_dimensions=["energy"]) + sa.finish(8.0)
    assert_ordered(events)
    det = of(events, "signal.detected")
    assert "engagement" in {d.data["signal_type"] for d in det}
    cue_ids = [(c["cue"], c["start"], c["end"]) for c in res["cues"]]
    for d in det:
        assert d.data["cues"] and all((c["cue"], c["start"], c["end"]) in cue_ids for c in d.data["cues"])
        assert re.search(r"\d+\.\d s", d.data["rationale"])
    assert len(of(events, "signal.ended")) == len(det)


def test_rationale_names_face_and_word_cues_with_sizes():
    from inter1srv.sequencer.analysis import rationale_for

    cues = [
        {"modality": "nonverbal", "cue": "head_nod", "value": 4.0, "start": 56.0, "end": 58.0,
         "rate_hz": 2.1, "amplitude": 0.11},
        {"modality": "verbal", "cue": "affirmation", "value": 1.0, "start": 57.2, "end": 57.6, "text": "exactly"},
        {"modality": "nonverbal", "cue": "look_away", "value": 1.5, "start": 58.0, "end": 59.5},
        {"modality": "nonverbal", "cue": "lean_in", "value": 1.3, "start": 58.0, "end": 60.0},
    ]
    text = rationale_for("agreement", cues, 56.0, 60.0, 0.9)
    assert "head nodded 4 times at 2.1 Hz" in text and "'exactly' at 57.2 s" in text
    assert "turned away for 1.5 s" in text and "leaning in" in text
    assert text.count(".") >= 1 and "shook" not in text


def test_rationale_names_a_smile_with_its_duration_and_probability():
    cues = [
        {"modality": "nonverbal", "cue": "head_nod", "value": 3.0, "start": 10.0, "end": 12.0,
         "rate_hz": 1.8, "amplitude": 0.09},
        {"modality": "nonverbal", "cue": "smile", "value": 0.93, "start": 10.0, "end": 12.0, "participant": 0},
        {"modality": "nonverbal", "cue": "smile", "value": 0.99, "start": 11.9, "end": 13.5, "participant": 0},
    ]
    text = rationale_for("agreement", cues, 10.0, 14.0, 0.85)
    assert "smiling for 3.5 s (10.0-13.5 s, happy-expression probability 0.99)" in text
    assert "head nodded 3 times" in text


def test_feedback_points_at_a_run_of_hedging_and_at_disengagement():
    hedges = [{"modality": "verbal", "cue": "hedge", "value": 1.0, "start": t, "end": t + 0.4, "text": w}
              for t, w in ((1.0, "maybe"), (3.5, "i think"), (6.0, "sort of"), (9.0, "probably"))]
    sa = SessionAnalysis(AnalysisSettings(feedback_every_windows=2))
    fb = []
    for k in range(2):
        s, e = 3.0 * k, 3.0 * k + 8
        r = result(s, e, {"uncertainty": [0.8] * 16}, cues=[VA, *hedges], drivers={"uncertainty": ["hedge"]})
        fb += of(sa.commit(r, 0.0 if k == 0 else e - 3, e, feedback_dimensions=["clarity"]), "feedback.generated")
    assert len(fb) == 1
    text = fb[0].data["feedback"]
    assert text.startswith("You hedged") and "'maybe'" in text and text.endswith(".")

    away = [{"modality": "nonverbal", "cue": "look_away", "value": 5.0, "start": 0.0, "end": 5.0},
            {"modality": "nonverbal", "cue": "face_absent", "value": 6.0, "start": 5.0, "end": 11.0}]
    sa = SessionAnalysis(AnalysisSettings(feedback_every_windows=2))
    fb = []
    for k in range(2):
        s, e = 3.0 * k, 3.0 * k + 8
        r = result(s, e, {"disengagement": [0.9] * 16}, cues=away, drivers={"disengagement": ["look_away"]})
        fb += of(sa.commit(r, 0.0 if k == 0 else e - 3, e, feedback_dimensions=["rapport"]),
                 "feedback.generated")
    assert fb and "turned away or out of view" in fb[-1].data["feedback"]
