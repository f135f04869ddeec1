"""The acoustic filled-pause cue: held flat vowels are found, words are not."""

from __future__ import annotations

import numpy as np
import pytest

from workers.evaluation.corpus import espeak_available
from workers.fillers import FillerSettings, filled_pauses

HOP = 0.02


def _track(n: int, pitch_sd: float = 0.1, flux: float = 0.03):
    """(valid, f0, flux) per hop: a steady 120 Hz voice with ``pitch_sd`` semitones of jitter."""
    rng = np.random.default_rng(1)
    f0 = 120.0 * 2 ** (rng.standard_normal(n) * pitch_sd / 12)
    return np.ones(n, bool), f0, np.full(n, flux)


def test_held_flat_vowel_between_pauses_is_a_filled_pause():
    valid, f0, flux = _track(200)
    runs = [(20, 40), (60, 90), (100, 120)]  # 0.4 s, 0.6 s, 0.4 s with 0.4 s / 0.2 s gaps
    assert filled_pauses(runs, valid, f0, flux, HOP) == runs


@pytest.mark.parametrize("change", ["pitch", "flux", "short", "long", "edge", "no_gap"])
def test_words_and_cut_runs_are_not(change):
    n = 200
    valid, f0, flux = _track(n, pitch_sd=1.5 if change == "pitch" else 0.1,
                             flux=0.12 if change == "flux" else 0.03)
    run = {"short": (50, 60), "long": (20, 100), "edge": (150, 200)}.get(change, (50, 80))
    runs = [run]
    if change == "no_gap":
        runs = [(40, 48), (50, 80), (85, 95)]  # 40 ms and 100 ms gaps: inside running speech
    assert run not in filled_pauses(runs, valid, f0, flux, HOP)


def test_words_starting_with_a_consonant_are_not():
    valid, f0, flux = _track(200)
    db = np.full(200, -60.0)
    db[50:80] = -20.0
    assert filled_pauses([(50, 80)], valid, f0, flux, HOP, db=db, speech_db=-50.0) == [(50, 80)]
    db[44:49] = -26.0  # "sss-o": loud but unvoiced just before the vowel
    assert filled_pauses([(50, 80)], valid, f0, flux, HOP, db=db, speech_db=-50.0) == []
    flux[55] = 0.3  # "n-o": the spectrum jumps as a voiced consonant opens into the vowel
    assert filled_pauses([(50, 80)], valid, f0, flux, HOP) == []


def test_settings_change_the_decision():
    valid, f0, flux = _track(200, flux=0.08)
    assert filled_pauses([(50, 80)], valid, f0, flux, HOP) == []
    assert filled_pauses([(50, 80)], valid, f0, flux, HOP, FillerSettings(max_flux=0.09)) == [(50, 80)]


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_precision_and_recall_on_espeak_speech():
    from workers.evaluation.fillers import probe

    p = probe()
    assert p.labelled >= 20 and p.detected >= 20
    assert p.precision >= 0.9 and p.recall >= 0.9, p


def test_rationale_names_the_filled_pauses():
    from inter1srv.sequencer.analysis import rationale_for

    cues = [{"modality": "paraverbal", "cue": "filled_pause", "value": 0.62, "start": 20.5, "end": 21.12},
            {"modality": "paraverbal", "cue": "filled_pause", "value": 0.48, "start": 25.6, "end": 26.08}]
    text = rationale_for("hesitation", cues, 20.0, 27.0, 0.8)
    assert "2 filled pauses ('uh'/'um', held 20.5-26.1 s, longest 0.6 s)" in text, text


def test_feedback_counts_filled_pauses_as_hedging():
    from inter1srv.sequencer.analysis import AnalysisSettings, SessionAnalysis
    from workers.contract import CQI_DIMENSIONS, SIGNAL_TYPES

    def result(s: float, e: float) -> dict:
        n = 16
        cues = [{"modality": "paraverbal", "cue": "filled_pause", "value": 0.5, "start": t, "end": t + 0.5}
                for t in (1.0, 4.0, 6.5, 9.0)]
        cues.append({"modality": "verbal", "cue": "hedge", "value": 1.0, "start": 7.5, "end": 7.9, "text": "maybe"})
        signals = {k: [0.0] * n for k in SIGNAL_TYPES}
        signals["hesitation"] = [0.8] * n
        return {"start": s, "end": e, "step": 0.5, "times": [s + 0.5 * k for k in range(n)], "signals": signals,
                "engagement": [0.0] * n, "disengagement": [0.0] * n,
                "evidence": {"verbal": [1.0] * n, "paraverbal": [1.0] * n, "nonverbal": [0.0] * n},
                "cues": [c for c in cues if c["end"] > s and c["start"] < e],
                "drivers": {k: (["filled_pause", "hedge"] if k == "hesitation" else []) for k in SIGNAL_TYPES},
                "cqi": {d: {"value": 50.0, "weight": 0.0} for d in CQI_DIMENSIONS}, "degraded": []}

    sa = SessionAnalysis(AnalysisSettings(feedback_every_windows=2))
    fb = []
    for k in range(2):
        s, e = 3.0 * k, 3.0 * k + 8
        fb += [ev for ev in sa.commit(result(s, e), 0.0 if k == 0 else e - 3, e, feedback_dimensions=["clarity"])
               if ev.type == "feedback.generated"]
    assert len(fb) == 1
    assert fb[0].data["feedback"].startswith("You hedged 5 times in the last 11 s ('maybe', 4 filled pauses)")
