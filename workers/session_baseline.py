"""Cues against the speaker's own usual level, from what the session said before.

A window is analysed on its own (by any worker, in any order), so "higher than this
speaker usually is" cannot be measured there: an 8 s window that is all raised voice
has nothing to compare with. The sequencer sees a session's results strictly in media
order; :class:`SessionBaseline` keeps, per session, the levels of the speech committed
so far and turns a window's ``pitch`` and ``loudness`` cues into

- ``raised_pitch`` (paraverbal; value: semitones above the reference, ``reference_hz``):
  a stress cue (higher F0 under stress, not universal: Giddens et al. 2013);
- ``raised_loudness`` (paraverbal; value: dB above the reference, ``reference_db``):
  a frustration cue (raised loudness).

The reference is the duration-weighted median of that cue's values over the last
``reference_s`` seconds of committed speech, used once ``min_reference_s`` seconds are
in; before that there is no reference and no claim. Only committed slices enter it, so
the result of a window depends on the media alone, not on timing or on which worker saw
what. The terms use the step contexts of :mod:`workers.baseline` (2 s centred on the
step): ``weight * ramp(value, lo, hi)`` where a raised cue overlaps the context.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.signal_shapes import raster, step_contexts

CONTEXT_S = 2.0


@dataclass(frozen=True)
class SessionBaselineSettings:
    min_reference_s: float = 4.0  # seconds of committed speech before a reference is used
    reference_s: float = 120.0  # the reference is taken over this much of the latest speech
    pitch_lo_st: float = 2.0  # semitones above the reference: raised_pitch is reported from here...
    pitch_hi_st: float = 5.0  # ...and its stress term is full from here
    loudness_lo_db: float = 3.0  # dB above the reference: raised_loudness from here...
    loudness_hi_db: float = 8.0  # ...full frustration term from here


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


def _overlap(c: Mapping[str, Any], lo: float, hi: float) -> float:
    return max(0.0, min(float(c["end"]), hi) - max(float(c["start"]), lo))


class SessionBaseline:
    """One session's reference levels (see the module docstring)."""

    def __init__(self, settings: SessionBaselineSettings | None = None) -> None:
        self.settings = settings or SessionBaselineSettings()
        self._history: dict[str, deque[tuple[float, float]]] = {r.source: deque() for r in RAISED}

    def reference(self, source: str) -> float | None:
        """Duration-weighted median of ``source`` over the kept speech, or None with too little."""
        kept = self._history[source]
        total = sum(d for _, d in kept)
        if total < self.settings.min_reference_s:
            return None
        ordered = sorted(kept)
        half, acc = total / 2.0, 0.0
        for value, seconds in ordered:
            acc += seconds
            if acc >= half:
                return value
        return ordered[-1][0]

    def apply(self, result: Mapping[str, Any]) -> dict:
        """``result`` with the raised cues and their signal terms added (a new dict; the input is kept)."""
        cues = list(result.get("cues") or [])
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
        if not added:
            return dict(result)
        times = np.asarray(result.get("times") or [], dtype=np.float64)
        lo_ctx, hi_ctx = step_contexts(times, float(result["start"]), float(result["end"]), CONTEXT_S,
                                       float(result.get("step") or 0.5))
        signals = dict(result.get("signals") or {})
        drivers = {k: list(v) for k, v in (result.get("drivers") or {}).items()}
        for r in RAISED:
            if not any(c["cue"] == r.cue for c in added):
                continue
            cov, mean = raster(added, r.cue, lo_ctx, hi_ctx)
            lo, hi = r.limits(self.settings)
            term = r.weight * np.clip((np.nan_to_num(mean, nan=lo) - lo) / (hi - lo), 0.0, 1.0) * (cov > 0)
            if not term.size or float(term.max()) <= 0.0:
                continue
            base = np.zeros(times.size)
            old = signals.get(r.signal) or []
            base[: len(old)] = np.asarray(old, dtype=np.float64)[: times.size]
            signals[r.signal] = [round(float(x), 4) for x in np.clip(base + term, 0.0, 1.0)]
            if r.cue not in drivers.setdefault(r.signal, []):
                drivers[r.signal].append(r.cue)
        return {**result, "cues": cues + added, "signals": signals, "drivers": drivers}

    def update(self, result: Mapping[str, Any], a: float, b: float) -> None:
        """Fold the committed slice [a, b) of ``result`` into the references."""
        for r in RAISED:
            kept = self._history[r.source]
            for c in result.get("cues") or []:
                if c["cue"] == r.source:
                    seconds = _overlap(c, a, b)
                    if seconds > 0:
                        kept.append((float(c["value"]), seconds))
            total = sum(d for _, d in kept)
            while kept and total - kept[0][1] >= self.settings.reference_s:
                total -= kept.popleft()[1]
