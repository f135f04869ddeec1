"""Cues against the speaker's own usual level, from what the session said before.

A window is analysed on its own (by any worker, in any order), so "higher than this
speaker usually is" cannot be measured there: an 8 s window that is all raised voice
has nothing to compare with. The sequencer sees a session's results strictly in media
order; :class:`SessionBaseline` keeps, per session, the levels committed so far and
turns a window's measurements into cues against them:

- ``raised_pitch`` (paraverbal; value: semitones above the usual ``pitch``, with
  ``reference_hz``): a stress cue (higher F0 under stress, not universal: Giddens et al. 2013);
- ``raised_loudness`` (paraverbal; value: dB above the usual ``loudness``, with
  ``reference_db``): a frustration cue (raised loudness);
- ``lean_in`` / ``lean_back`` (nonverbal; value: the tracked face's ``face_size`` over its
  usual size, held at least ``lean_min_s``): interest and engagement / skepticism.

A reference is the duration-weighted median of the measurement over its last
``reference_s`` measured seconds (seconds of speech for pitch and loudness, of a tracked
face for its size: they may span more media time), used once ``min_reference_s`` seconds
are in; before that there is no reference and no claim. Only committed slices enter it,
in media order, so a window's events depend only on the slices committed before it, not
on which worker analysed what or when (a slice shed under overload is not committed and
so is not part of any reference). The signal terms use the step contexts of :mod:`workers.baseline`: for a raised
voice ``weight * ramp(value, lo, hi)`` where the cue overlaps the 2 s context, for a lean
``weight * (fraction of the 3 s context covered)``. The CQI ``learning`` dimension, which
counts leaning in, is recomputed with :func:`learning_cqi` (the worker's formula).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.contract import DRIVER_MIN
from workers.signal_shapes import overlap, ramp, raster, step_contexts

CONTEXT_S = 2.0


@dataclass(frozen=True)
class SessionBaselineSettings:
    min_reference_s: float = 4.0  # seconds of committed speech before a reference is used
    reference_s: float = 120.0  # the reference is taken over this much of the latest speech
    pitch_lo_st: float = 2.0  # semitones above the reference: raised_pitch is reported from here...
    pitch_hi_st: float = 5.0  # ...and its stress term is full from here
    loudness_lo_db: float = 3.0  # dB above the reference: raised_loudness from here...
    loudness_hi_db: float = 8.0  # ...full frustration term from here
    lean_in: float = 1.15  # face size over the usual size: leaning in from here...
    lean_back: float = 0.87  # ...leaning back from here down
    lean_min_s: float = 1.0  # held this long


@dataclass(frozen=True)
class _Raised:
    source: str  # the window's cue the reference is kept for
    cue: str  # the cue reported against the reference
    signal: str  # the signal it feeds
    weight: float
    reference_key: str

    def delta(self, value: float, reference: float) -> float:
        return 12.0 * math.log2(value / reference) if self.source == "pitch" else value - reference

    def limits(self, s: SessionBaselineSettings) -> tuple[float, float]:
        return (s.pitch_lo_st, s.pitch_hi_st) if self.source == "pitch" else (s.loudness_lo_db, s.loudness_hi_db)


RAISED = (
    _Raised("pitch", "raised_pitch", "stress", 0.5, "reference_hz"),
    _Raised("loudness", "raised_loudness", "frustration", 0.25, "reference_db"),
)
LEAN_CONTEXT_S = 3.0
LEAN_TERMS = (("lean_in", "interest", 0.7), ("lean_in", "engagement", 0.2), ("lean_back", "skepticism", 0.65))
SIZE_GAP_S = 0.3  # face_size pieces further apart than this do not make one lean


def learning_cqi(cues: list, mean_w: float, mean_v: float) -> dict | None:
    """The CQI ``learning`` dimension: interest and confusion phrases (verbal evidence) and
    seconds of leaning in (video evidence); None when neither was measured."""
    learn = sum(1 for c in cues if c["cue"] in ("interest_phrase", "confusion_phrase"))
    lean = sum(float(c["end"]) - float(c["start"]) for c in cues if c["cue"] == "lean_in")
    if not learn and lean <= 0:
        return None
    value = 50 + 30 * min(1.0, learn / 2.0) + 20 * min(1.0, lean / 3.0)
    weight = max(mean_w if learn else 0.0, mean_v * min(1.0, lean / 3.0))
    return {"value": round(value, 1), "weight": round(weight, 4)}


class SessionBaseline:
    """One session's reference levels (see the module docstring)."""

    def __init__(self, settings: SessionBaselineSettings | None = None) -> None:
        self.settings = settings or SessionBaselineSettings()
        self._history: dict[str, deque[tuple[float, float]]] = {r.source: deque() for r in RAISED}
        self._history["face_size"] = deque()

    def reference(self, source: str) -> float | None:
        """Duration-weighted median of ``source`` over the kept measurements, or None with too little."""
        kept = self._history[source]
        total = sum(d for _, d in kept)
        if not kept or total < self.settings.min_reference_s:
            return None
        ordered = sorted(kept)
        half, acc = total / 2.0, 0.0
        for value, seconds in ordered:
            acc += seconds
            if acc >= half:
                return value
        return ordered[-1][0]

    def apply(self, result: Mapping[str, Any]) -> dict:
        """``result`` with the cues against the references and their terms added (a new dict;
        the input is not changed)."""
        cues = list(result.get("cues") or [])
        times = np.asarray(result.get("times") or [], dtype=np.float64)
        raised = self._raised(cues)
        leans = self._leans(cues)
        if not times.size or (not raised and not leans):
            return dict(result)
        step = float(result.get("step") or 0.5)
        start = float(result.get("start", times[0]))
        end = float(result.get("end", times[-1] + step))
        out = {**result, "cues": cues + raised + leans, "signals": dict(result.get("signals") or {}),
               "drivers": {k: list(v) for k, v in (result.get("drivers") or {}).items()}}
        lo, hi = step_contexts(times, start, end, CONTEXT_S, step)
        for r in RAISED:
            cov, mean = raster(raised, r.cue, lo, hi)
            a, b = r.limits(self.settings)
            term = r.weight * ramp(mean, a, b) * (cov > 0)
            _add_term(out, r.signal, r.cue, term)
        lo, hi = step_contexts(times, start, end, LEAN_CONTEXT_S, step)
        for cue, signal, weight in LEAN_TERMS:
            _add_term(out, signal, cue, weight * raster(leans, cue, lo, hi)[0])
        if any(c["cue"] == "lean_in" for c in leans):
            ev = result.get("evidence") or {}
            means = [float(np.mean(ev.get(m) or [0.0])) for m in ("verbal", "nonverbal")]
            learning = learning_cqi(out["cues"], *means)
            given = (result.get("cqi") or {}).get("learning") or {}
            if learning is not None and learning["weight"] >= float(given.get("weight", 0.0)):
                out["cqi"] = {**(result.get("cqi") or {}), "learning": learning}
        return out

    def _raised(self, cues: list) -> list[dict]:
        added: list[dict] = []
        for r in RAISED:
            ref = self.reference(r.source)
            if ref is None or (r.source == "pitch" and ref <= 0):
                continue
            lo, _ = r.limits(self.settings)
            for c in cues:
                if c["cue"] != r.source or (r.source == "pitch" and float(c["value"]) <= 0):
                    continue
                delta = r.delta(float(c["value"]), ref)
                if delta >= lo:
                    added.append({"modality": "paraverbal", "cue": r.cue, "value": round(delta, 2),
                                  "start": float(c["start"]), "end": float(c["end"]),
                                  r.reference_key: round(ref, 1)})
        return added

    def _leans(self, cues: list) -> list[dict]:
        ref = self.reference("face_size")
        if ref is None or ref <= 0:
            return []
        s = self.settings
        sizes = sorted((c for c in cues if c["cue"] == "face_size" and c.get("participant", 0) == 0),
                       key=lambda c: float(c["start"]))
        out: list[dict] = []
        for name, leaning in (("lean_in", lambda x: x >= s.lean_in), ("lean_back", lambda x: x <= s.lean_back)):
            run: list[tuple[dict, float]] = []
            for c in sizes + [None]:
                ratio = float(c["value"]) / ref if c is not None else 0.0
                joins = c is not None and leaning(ratio) and (
                    not run or float(c["start"]) <= float(run[-1][0]["end"]) + SIZE_GAP_S)
                if joins:
                    run.append((c, ratio))
                    continue
                if run and float(run[-1][0]["end"]) - float(run[0][0]["start"]) >= s.lean_min_s - 1e-6:
                    out.append({"modality": "nonverbal", "cue": name,
                                "value": round(float(np.median([x for _, x in run])), 3),
                                "start": float(run[0][0]["start"]), "end": float(run[-1][0]["end"]),
                                "participant": 0, "reference_px": round(ref, 1)})
                run = [(c, ratio)] if c is not None and leaning(ratio) else []
        return out

    def update(self, result: Mapping[str, Any], a: float, b: float) -> None:
        """Fold the committed slice [a, b) of ``result`` into the references."""
        for source, kept in self._history.items():
            for c in result.get("cues") or []:
                if c["cue"] != source or (source == "face_size" and c.get("participant", 0) != 0):
                    continue
                value, seconds = float(c["value"]), overlap(c, a, b)
                # a level in dB may be negative; a pitch or a size must be positive to be a level at all
                if seconds > 0 and math.isfinite(value) and (source == "loudness" or value > 0):
                    kept.append((value, seconds))
            total = sum(d for _, d in kept)
            while kept and total - kept[0][1] >= self.settings.reference_s:
                total -= kept.popleft()[1]


def _add_term(result: dict, signal: str, cue: str, term: np.ndarray) -> None:
    """Add ``term`` (per step) to ``signal``'s scores (and to ``engagement`` / ``disengagement``,
    which the contract also carries on their own) and list ``cue`` among its drivers."""
    if not term.size or float(term.max()) <= 0.0:
        return
    base = np.zeros(term.size)
    old = result["signals"].get(signal) or []
    base[: len(old)] = np.asarray(old, dtype=np.float64)[: term.size]
    scores = [round(float(x), 4) for x in np.clip(base + term, 0.0, 1.0)]
    result["signals"][signal] = scores
    if signal in ("engagement", "disengagement"):
        result[signal] = scores
    if float(term.max()) >= DRIVER_MIN and cue not in result["drivers"].setdefault(signal, []):
        result["drivers"][signal].append(cue)
