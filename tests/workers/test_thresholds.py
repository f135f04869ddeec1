"""Cue thresholds and signal hysteresis as operator settings ($INTER1SRV_MODEL_SETTINGS)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from inter1srv.sequencer.analysis import AnalysisSettings, SessionAnalysis
from workers.baseline import BaselineModel
from workers.contract import CQI_DIMENSIONS, SIGNAL_TYPES, STEP_SECONDS
from workers.face import FaceFrame, FaceSettings, face_cues
from workers.thresholds import (
    ENV,
    ModelSettings,
    ModelSettingsError,
    MotionSettings,
    from_mapping,
    load,
    model_settings,
)


def test_defaults_are_the_measured_values():
    s = ModelSettings()
    assert (s.voice.voicing_min, s.voice.bridge_s, s.voice.long_silence_s) == (0.5, 0.3, 2.0)
    assert (s.prosody.rise_st, s.fillers.max_flux, s.spotting.overlap_s) == (2.0, 0.07, 0.4)
    assert s.signals == AnalysisSettings()
    assert (s.signals.on_threshold, s.signals.off_threshold, s.signals.band_high) == (0.6, 0.4, 0.75)
    assert (s.face.nod_min_amp, s.face.nod_min_hz, s.face.nod_max_hz, s.face.osc_axis_ratio) == (0.03, 1.0, 4.5, 2.0)
    assert (s.face.tilt_min_deg, s.face.turned_eye_ratio) == (10.0, 0.8)
    assert (s.face.smile_min_prob, s.face.smile_min_s, s.face.smile_max_gap_s) == (0.7, 1.0, 0.25)
    assert (s.baseline.lean_in, s.baseline.lean_back, s.baseline.pitch_lo_st, s.baseline.min_reference_s) == \
        (1.15, 0.87, 2.0, 4.0)
    assert s.face == FaceSettings() and s.motion == MotionSettings()
    assert (s.motion.still_level, s.motion.min_still_s, s.motion.osc_min_hz, s.motion.osc_max_hz) == (0.6, 1.0, 1.5, 4.5)


@pytest.mark.parametrize(("data", "message"), [
    ({"signal": {}}, "unknown section 'signal'"),
    ({"signals": {"on_treshold": 0.7}}, "unknown setting signals.on_treshold"),
    ({"signals": {"on_threshold": 1.5}}, "signals.on_threshold must be within [0, 1]"),
    ({"signals": {"min_on_steps": 2.5}}, "signals.min_on_steps must be a whole number"),
    ({"signals": {"min_on_steps": True}}, "signals.min_on_steps must be a number"),
    ({"voice": {"bridge_s": "0.3"}}, "voice.bridge_s must be a finite number"),
    ({"voice": {"bridge_s": -1}}, "voice.bridge_s must not be negative"),
    ({"signals": {"off_threshold": 0.7}}, "signals.off_threshold must not exceed signals.on_threshold"),
    ({"fillers": {"min_s": 2.0}}, "fillers.min_s must be below fillers.max_s"),
    ({"voice": 3}, "section 'voice' must be a table"),
    ({"spotting": {"cut_search_s": 0.0}}, "spotting.cut_search_s must be at least one 20 ms hop"),
    ({"face": {"nod_min_amp": -0.01}}, "face.nod_min_amp must not be negative"),
    ({"face": {"skin_turned": 1.5}}, "face.skin_turned must be within [0, 1]"),
    ({"face": {"smile_min_prob": 1.2}}, "face.smile_min_prob must be within [0, 1]"),
    ({"face": {"smile_min_prob": 0.0}}, "face.smile_min_prob and face.smile_min_s must be positive"),
    ({"face": {"lean_in": 1.2}}, "face.lean_in moved to baseline.lean_in"),
    ({"face": {"lean_ref_s": 4.0}}, "face.lean_ref_s is gone"),
    ({"baseline": {"min_reference_s": 0.0}}, "baseline.min_reference_s must be positive"),
    ({"face": {"nod_amp": 0.05}}, "unknown setting face.nod_amp"),
    ({"face": {"nod_min_hz": 5.0}}, "face.nod_min_hz must be below face.nod_max_hz"),
    ({"baseline": {"lean_in": 0.9}}, "baseline.lean_back must be below 1 and baseline.lean_in above 1"),
    ({"face": {"tilt_min_deg": 120.0}}, "face.tilt_min_deg must be within [0, 90]"),
    ({"motion": {"still_level": "low"}}, "motion.still_level must be a finite number"),
    ({"motion": {"osc_max_hz": 1.0}}, "motion.osc_min_hz must be below motion.osc_max_hz"),
    ({"motion": {"max_pair_dt": 0.0}}, "motion.max_pair_dt and motion.chunk_s must be positive"),
])
def test_bad_settings_are_refused_with_the_key_named(data, message):
    with pytest.raises(ModelSettingsError, match=re.escape(f"ops.json: {message}")):
        from_mapping(data, "ops.json")


def test_json_and_toml_files(tmp_path):
    j = tmp_path / "m.json"
    j.write_text(json.dumps({"signals": {"on_threshold": 0.7}, "voice": {"voicing_min": 0.6}}))
    t = tmp_path / "m.toml"
    t.write_text("[signals]\non_threshold = 0.7\n\n[voice]\nvoicing_min = 0.6\n")
    for path in (j, t):
        s = load(str(path))
        assert s.signals.on_threshold == 0.7 and s.voice.voicing_min == 0.6
        assert s.signals.off_threshold == 0.4  # the rest keeps its default
    bad = tmp_path / "bad.toml"
    bad.write_text("[signals\n")
    with pytest.raises(ModelSettingsError, match="bad.toml: not valid TOML"):
        load(str(bad))
    with pytest.raises(ModelSettingsError, match="cannot read it"):
        load(str(tmp_path / "missing.json"))


def _result(scores: list[float]) -> dict:
    n = len(scores)
    times = [k * STEP_SECONDS for k in range(n)]
    signals = {s: [0.0] * n for s in SIGNAL_TYPES}
    signals["confidence"] = scores
    cue = {"modality": "paraverbal", "cue": "loudness", "value": -18.0, "start": 0.0, "end": n * STEP_SECONDS}
    return {"start": 0.0, "end": n * STEP_SECONDS, "step": STEP_SECONDS, "times": times, "signals": signals,
            "engagement": [0.0] * n, "disengagement": [0.0] * n,
            "evidence": {"verbal": [0.0] * n, "paraverbal": [1.0] * n, "nonverbal": [1.0] * n},
            "cues": [cue], "drivers": {s: (["loudness"] if s == "confidence" else []) for s in SIGNAL_TYPES},
            "cqi": {d: {"value": 50.0, "weight": 0.0} for d in CQI_DIMENSIONS}, "degraded": []}


def _detected(analysis: SessionAnalysis) -> list[str]:
    events = analysis.commit(_result([0.7] * 16), 0.0, 8.0, feedback_dimensions=None)
    return [e.data["signal_type"] for e in events if e.type == "signal.detected"]


def test_operator_file_changes_the_sequencers_thresholds(tmp_path, monkeypatch):
    assert _detected(SessionAnalysis()) == ["confidence"]  # 0.7 is over the default 0.6
    path = tmp_path / "strict.json"
    path.write_text(json.dumps({"signals": {"on_threshold": 0.8, "off_threshold": 0.5}}))
    monkeypatch.setenv(ENV, str(path))
    assert model_settings().signals.on_threshold == 0.8
    assert _detected(SessionAnalysis()) == []


def test_operator_file_changes_the_models_cues(tmp_path, monkeypatch, media):
    w = media.window(0.0, 8.0, video=False)

    def voiced(model: BaselineModel) -> float:
        (r,) = model.analyze([w])
        return sum(c["end"] - c["start"] for c in r["cues"] if c["cue"] == "voice_activity")

    assert voiced(BaselineModel("cpu", asr="none", faces=False)) > 6.0
    path = tmp_path / "deaf.toml"
    path.write_text("[voice]\nmin_threshold_db = -5.0\n")  # nothing in the clip is that loud
    monkeypatch.setenv(ENV, str(path))
    assert voiced(BaselineModel("cpu", asr="none", faces=False)) == 0.0
    # settings passed in win over the environment
    assert voiced(BaselineModel("cpu", asr="none", faces=False, settings=ModelSettings())) > 6.0


def test_readme_example_is_valid(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", readme, re.S)
    assert block, "README has a TOML example of the model settings"
    path = tmp_path / "example.toml"
    path.write_text(block.group(1))
    s = load(str(path))
    assert s.signals.on_threshold == 0.65 and s.signals.min_on_steps == 3 and s.voice.voicing_min == 0.55


def _nodding(amplitude: float, seconds: float = 4.0, hz: float = 2.0, fps: int = 10) -> list[FaceFrame]:
    """A frontal face of 60 px whose centre moves up and down by ``amplitude`` x its size."""
    t = np.arange(int(seconds * fps)) / fps
    cy = 120.0 + amplitude * 60.0 * np.sin(2 * np.pi * hz * t)
    return [FaceFrame(float(x), "frontal", 160.0, float(y), 60.0, 1) for x, y in zip(t, cy, strict=True)]


def test_face_override_changes_the_face_cues():
    recs = _nodding(0.05)  # 5 % of the face size: over the default 3 %
    nods = [c for c in face_cues(recs, 0.0, 4.0)[0] if c["cue"] == "head_nod"]
    assert nods and all(c["amplitude"] == pytest.approx(0.05, abs=0.01) for c in nods)
    strict = from_mapping({"face": {"nod_min_amp": 0.08}}, "ops.json").face
    assert [c for c in face_cues(recs, 0.0, 4.0, cfg=strict)[0] if c["cue"] == "head_nod"] == []
    slow = from_mapping({"face": {"nod_max_hz": 1.5}}, "ops.json").face  # 2 Hz is out of range
    assert [c for c in face_cues(recs, 0.0, 4.0, cfg=slow)[0] if c["cue"] == "head_nod"] == []


def test_the_model_hands_its_face_and_motion_settings_on(tmp_path, monkeypatch, media):
    pytest.importorskip("cv2")
    path = tmp_path / "face.toml"
    path.write_text("[face]\nskin_turned = 0.0\n\n[motion]\nosc_min_rms = 100.0\n")
    monkeypatch.setenv(ENV, str(path))
    model = BaselineModel("cpu", asr="none", faces="haar")
    assert model.face is not None and model.face.settings is model.settings.face
    assert model.settings.face.skin_turned == 0.0
    # the tracker's turned/absent test reads the settings: no skin at all is "turned" at a zero threshold
    black = np.zeros((240, 320, 3), np.uint8)
    assert model.face._turned_or_absent(black, (160.0, 120.0, 60.0)) == "turned"
    default = BaselineModel("cpu", asr="none", faces="haar", settings=ModelSettings())
    assert default.face is not None and default.face._turned_or_absent(black, (160.0, 120.0, 60.0)) == "absent"

    # motion: the first scripted segment oscillates up-down; an RMS floor nobody reaches removes it
    s, e = media.segment_bounds(0)
    w = media.window(s, s + 8.0, audio=False)

    def oscillations(m: BaselineModel) -> list[str]:
        (r,) = m.analyze([w])
        return [c["cue"] for c in r["cues"] if c["cue"].endswith("_oscillation")]

    assert oscillations(BaselineModel("cpu", asr="none", faces=False, settings=ModelSettings()))
    assert oscillations(BaselineModel("cpu", asr="none", faces=False)) == []
