"""The sequencer-side reference of a speaker's usual pitch and loudness."""

from __future__ import annotations

import pytest

from inter1srv.sequencer.analysis import SessionAnalysis
from workers.session_baseline import SessionBaseline, SessionBaselineSettings
from workers.thresholds import AnalysisSettings, ModelSettingsError, from_mapping


def cue(name: str, value: float, start: float, end: float) -> dict:
    return {"modality": "paraverbal", "cue": name, "value": value, "start": start, "end": end}


def window(start: float, cues: list[dict], signals: dict | None = None) -> dict:
    times = [start + 0.5 * i for i in range(16)]
    return {"start": start, "end": start + 8.0, "step": 0.5, "times": times,
            "signals": signals or {"stress": [0.0] * 16, "frustration": [0.0] * 16},
            "engagement": [0.0] * 16, "disengagement": [0.0] * 16, "evidence": {},
            "cues": cues, "drivers": {}, "cqi": {}, "degraded": []}


def test_no_reference_before_enough_committed_speech():
    b = SessionBaseline(SessionBaselineSettings(min_reference_s=4.0))
    w = window(0.0, [cue("pitch", 100.0, 0.0, 3.0), cue("pitch", 200.0, 4.0, 6.0)])
    assert b.reference("pitch") is None
    assert b.apply(w)["cues"] == w["cues"], "no reference, no raised cue"
    b.update(w, 0.0, 3.5)  # commits 3 s of the 100 Hz phrase only: still too little
    assert b.reference("pitch") is None
    b.update(window(3.0, [cue("pitch", 100.0, 3.0, 5.0)]), 3.5, 6.5)
    assert b.reference("pitch") == pytest.approx(100.0)


def test_reference_is_a_duration_weighted_median_of_the_latest_speech():
    b = SessionBaseline(SessionBaselineSettings(min_reference_s=1.0, reference_s=8.0))
    b.update(window(0.0, [cue("pitch", 300.0, 0.0, 8.0)]), 0.0, 8.0)  # 8 s at 300 Hz
    assert b.reference("pitch") == pytest.approx(300.0)
    b.update(window(8.0, [cue("pitch", 100.0, 8.0, 13.0), cue("pitch", 120.0, 13.0, 16.0)]), 8.0, 16.0)
    # the newest 8 s are kept: 5 s at 100 Hz outweigh 3 s at 120 Hz (with the 300 Hz part the median would be 120)
    assert b.reference("pitch") == pytest.approx(100.0)


def test_raised_pitch_and_loudness_feed_stress_and_frustration_and_are_cited():
    b = SessionBaseline(SessionBaselineSettings(min_reference_s=4.0))
    calm = window(0.0, [cue("pitch", 100.0, 0.5, 7.5), cue("loudness", -20.0, 0.5, 7.5)])
    b.update(calm, 0.0, 8.0)
    raised = window(8.0, [cue("pitch", 100.0, 8.0, 10.0), cue("pitch", 150.0, 12.0, 14.0),
                          cue("loudness", -20.0, 8.0, 10.0), cue("loudness", -12.0, 12.0, 14.0)])
    out = b.apply(raised)
    added = {c["cue"]: c for c in out["cues"] if c["cue"].startswith("raised_")}
    assert added["raised_pitch"]["value"] == pytest.approx(7.02, abs=0.01)  # 12 log2(1.5)
    assert added["raised_pitch"]["reference_hz"] == 100.0
    assert added["raised_loudness"]["value"] == pytest.approx(8.0)
    assert (added["raised_pitch"]["start"], added["raised_pitch"]["end"]) == (12.0, 14.0)
    stress, frustration = out["signals"]["stress"], out["signals"]["frustration"]
    at = raised["times"].index(13.0)
    assert stress[at] == pytest.approx(0.5) and frustration[at] == pytest.approx(0.25)
    assert stress[raised["times"].index(9.0)] == 0.0, "the phrase at the usual pitch adds nothing"
    assert "raised_pitch" in out["drivers"]["stress"] and "raised_loudness" in out["drivers"]["frustration"]
    assert raised["signals"]["stress"] == [0.0] * 16 and len(raised["cues"]) == 4, "the input is not changed"


def test_small_rises_are_not_reported():
    b = SessionBaseline()
    b.update(window(0.0, [cue("pitch", 100.0, 0.0, 8.0)]), 0.0, 8.0)
    out = b.apply(window(8.0, [cue("pitch", 110.0, 8.0, 12.0)]))  # +1.65 semitones
    assert not [c for c in out["cues"] if c["cue"] == "raised_pitch"]


def test_session_analysis_detects_stress_from_raised_pitch_and_names_it():
    sa = SessionAnalysis(AnalysisSettings(), SessionBaselineSettings())
    calm = window(0.0, [cue("voice_activity", 1.0, 0.0, 8.0), cue("pitch", 100.0, 0.0, 8.0)],
                  {"stress": [0.2] * 16})
    events = sa.commit(calm, 0.0, 8.0, feedback_dimensions=None)
    assert not [e for e in events if e.type == "signal.detected"]
    high = window(3.0, [cue("voice_activity", 1.0, 3.0, 11.0), cue("pitch", 100.0, 3.0, 8.0),
                        cue("pitch", 170.0, 8.0, 11.0)], {"stress": [0.2] * 16})
    events = sa.commit(high, 8.0, 11.0, feedback_dimensions=None)
    detected = [e for e in events if e.type == "signal.detected"]
    assert [e.data["signal_type"] for e in detected] == ["stress"]
    assert "above this speaker's usual 100 Hz" in detected[0].data["rationale"]
    assert [c["cue"] for c in detected[0].data["cues"]] == ["raised_pitch"]


def test_settings_section_is_validated():
    assert from_mapping({"baseline": {"pitch_lo_st": 1.5}}).baseline.pitch_lo_st == 1.5
    with pytest.raises(ModelSettingsError, match="baseline.pitch_lo_st"):
        from_mapping({"baseline": {"pitch_lo_st": 6.0}})


def sizes(start: float, end: float, px: float) -> list[dict]:
    out, t = [], start
    while t < end - 1e-9:
        out.append({"modality": "nonverbal", "cue": "face_size", "value": px, "start": t, "end": min(end, t + 0.5),
                    "participant": 0})
        t += 0.5
    return out


def test_lean_is_against_the_usual_face_size_and_returning_to_it_is_no_lean():
    b = SessionBaseline()
    b.update(window(0.0, sizes(0.0, 8.0, 60.0)), 0.0, 8.0)
    leaning = window(8.0, sizes(8.0, 10.0, 60.0) + sizes(10.0, 13.0, 80.0) + sizes(13.0, 16.0, 60.0),
                     {"interest": [0.1] * 16, "engagement": [0.1] * 16, "skepticism": [0.0] * 16})
    leaning["evidence"] = {"verbal": [0.0] * 16, "nonverbal": [1.0] * 16}
    out = b.apply(leaning)
    (lean,) = [c for c in out["cues"] if c["cue"].startswith("lean_")]
    assert (lean["cue"], lean["value"], lean["start"], lean["end"]) == ("lean_in", pytest.approx(1.333, abs=1e-3), 10.0, 13.0)
    assert lean["reference_px"] == 60.0
    at = leaning["times"].index(11.5)
    covered = 2.75 / 3.0  # the step's 3 s context [10.25, 13.25) holds 2.75 s of the lean
    assert out["signals"]["interest"][at] == pytest.approx(0.1 + 0.7 * covered, abs=1e-4)
    assert out["engagement"][at] == pytest.approx(0.1 + 0.2 * covered, abs=1e-4)
    assert out["signals"]["engagement"] == out["engagement"]
    assert out["drivers"]["interest"] == ["lean_in"] and "skepticism" not in out["drivers"]
    assert out["cqi"]["learning"] == {"value": 70.0, "weight": 1.0}, "3 s of leaning in: the worker's learning formula"
    b.update(out, 8.0, 16.0)
    # back at the usual size after the lean (a within-window reference called this a lean back)
    after = b.apply(window(16.0, sizes(16.0, 24.0, 60.0)))
    assert not [c for c in after["cues"] if c["cue"].startswith("lean_")]
    short = b.apply(window(16.0, sizes(16.0, 16.5, 45.0) + sizes(16.5, 24.0, 60.0)))
    assert not [c for c in short["cues"] if c["cue"].startswith("lean_")], "0.5 s is no posture"
    back = b.apply(window(16.0, sizes(16.0, 18.0, 45.0) + sizes(18.5, 20.0, 45.0)))
    assert [(c["cue"], c["start"], c["end"]) for c in back["cues"] if c["cue"].startswith("lean_")] == \
        [("lean_back", 16.0, 18.0), ("lean_back", 18.5, 20.0)], "a gap in the face track splits a lean"


def test_unusable_measurements_and_results_without_steps_are_safe():
    b = SessionBaseline(SessionBaselineSettings(min_reference_s=0.5))
    assert b.reference("pitch") is None, "nothing kept: no reference, whatever the minimum"
    b.update(window(0.0, [cue("pitch", float("nan"), 0.0, 2.0), cue("pitch", 0.0, 2.0, 3.0),
                          cue("loudness", -20.0, 0.0, 3.0)]), 0.0, 8.0)
    assert b.reference("pitch") is None, "nan and 0 Hz are not a pitch"
    assert b.reference("loudness") == -20.0, "a level in dBFS is negative"
    b.update(window(0.0, [cue("pitch", 100.0, 3.0, 8.0)]), 0.0, 8.0)
    assert b.reference("pitch") == 100.0
    # a result with no steps, or without start / end (another model): kept as it is, or steps taken from times
    empty = {"times": [], "cues": [cue("pitch", 200.0, 0.0, 1.0)], "signals": {}}
    assert b.apply(empty) == empty
    bare = window(8.0, [cue("pitch", 200.0, 8.0, 12.0)])
    del bare["start"], bare["end"], bare["step"], bare["evidence"], bare["cqi"], bare["drivers"]
    out = b.apply(bare)
    assert [c["cue"] for c in out["cues"]].count("raised_pitch") == 1 and max(out["signals"]["stress"]) == 0.5


def test_learning_from_a_lean_does_not_replace_a_better_supported_one():
    b = SessionBaseline()
    b.update(window(0.0, sizes(0.0, 8.0, 60.0)), 0.0, 8.0)
    w = window(8.0, sizes(8.0, 12.0, 80.0))
    w["evidence"] = {"verbal": [0.0] * 16, "nonverbal": [0.2] * 16}
    w["cqi"] = {"learning": {"value": 80.0, "weight": 0.9}}
    assert b.apply(w)["cqi"]["learning"] == {"value": 80.0, "weight": 0.9}
    w["cqi"] = {"learning": {"value": 50.0, "weight": 0.0}}
    assert b.apply(w)["cqi"]["learning"]["weight"] == pytest.approx(0.2)


def test_a_gap_in_the_session_keeps_the_reference():
    sa = SessionAnalysis(AnalysisSettings(), SessionBaselineSettings())
    sa.commit(window(0.0, [cue("pitch", 100.0, 0.0, 8.0)]), 0.0, 8.0, feedback_dimensions=None)
    # 8-20 s dropped (shed or never analysed): the next slice does not join, the reference is still there
    events = sa.commit(window(20.0, [cue("voice_activity", 1.0, 20.0, 28.0), cue("pitch", 170.0, 20.0, 28.0)],
                              {"stress": [0.2] * 16}), 20.0, 28.0, feedback_dimensions=None)
    assert [e.data["signal_type"] for e in events if e.type == "signal.detected"] == ["stress"]
