"""Window results -> protocol events (sans-I/O: no sockets, no processes, no clocks).

The sequencer hands :class:`SessionAnalysis` the results of one session strictly
in media order, each with the slice ``[a, b)`` it commits (the window's newest
part; earlier steps were committed by earlier windows). ``commit`` returns the
events of that slice, ``finish`` ends what is still active. Events carry
``data`` exactly as PROTOCOL.md specifies; the envelope (timestamp,
correlation id, flat fields) and the include-flag filtering of
``conversation_quality.updated`` belong to the protocol layer.

Ordering: every returned event has ``t`` >= the ``t`` of every event returned
before it for this session. ``signal.detected`` is stamped at the signal's
start, ``signal.ended`` at its end and ``engagement.updated`` at the new
state's start; when that moment lies in a slice already committed (a run that
began at the end of the previous slice) ``t`` is raised to the last emitted
``t`` while ``data`` keeps the true ``start``/``end``.

A slice that does not join the previous one (``a`` after the previous ``b``:
media dropped or never analysed) first ends every active signal at the
previous ``b`` (the last analysed second) and resets the pending runs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from inter1srv.sequencer import ranges
from workers.contract import CQI_DIMENSIONS, MODALITIES, SIGNAL_TYPES, STEP_SECONDS, Cue, WindowResult
from workers.session_baseline import SessionBaseline, SessionBaselineSettings
from workers.signal_shapes import overlap
from workers.thresholds import AnalysisSettings, model_settings

EPS = 1e-6
CONTEXT_SECONDS = 3.0  # how far before a signal's span its cited cues may lie


class Event(NamedTuple):
    """One protocol event: ``type``, media time ``t``, and ``data`` as in PROTOCOL.md."""

    type: str
    t: float
    data: dict


@dataclass
class _Track:
    active: bool = False
    start: float = 0.0
    band: str = "low"
    modality: tuple[str, ...] = ()
    run_start: float = 0.0
    run_scores: list[float] | None = None
    off_start: float = 0.0
    off_count: int = 0
    recent: deque | None = None
    band_run: tuple[str, list[float]] | None = None

    def reset_runs(self) -> None:
        self.run_scores = None
        self.off_count = 0
        self.band_run = None


@dataclass
class _Summary:
    """Measured numbers of one committed slice, for feedback."""

    a: float
    b: float
    values: dict[str, float]
    weights: dict[str, float]
    audio_s: float
    video_s: float
    speech_s: float
    loud_db: float | None
    pauses: int
    longest_pause: float
    motion: float | None
    still_s: float
    silence_s: float
    pitch_var: float | None
    words: dict | None = None  # verbal cue name -> phrases said in the slice
    active: tuple = ()  # signals active at the end of the slice
    away_s: float = 0.0  # seconds with the face turned away or absent
    fillers: int = 0  # filled pauses ("uh", "um") starting in the slice


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def _wmean(cues: Iterable[Mapping[str, Any]], lo: float, hi: float) -> float | None:
    num = den = 0.0
    for c in cues:
        ov = overlap(c, lo, hi)
        num += ov * float(c["value"])
        den += ov
    return num / den if den > 0 else None


def _title(signal: str) -> str:
    return signal[:1].upper() + signal[1:]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def rationale_for(signal: str, cues: Sequence[Mapping[str, Any]], lo: float, hi: float, score: float) -> str:
    """One sentence naming the given measured cues, with their times and sizes over [lo, hi)."""
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for c in cues:
        by_name.setdefault(str(c["cue"]), []).append(c)

    def extent(sel: list[Mapping[str, Any]]) -> tuple[float, float]:
        return max(lo, min(float(c["start"]) for c in sel)), min(hi, max(float(c["end"]) for c in sel))

    phrases: list[str] = []
    used: set[str] = set()
    va = by_name.get("voice_activity")
    if va:
        s, e = extent(va)
        frac = _wmean(va, lo, hi)
        phrase = f"voice active {100 * (frac or 0.0):.0f}% of {s:.1f}-{e:.1f} s"
        loud = _wmean(by_name.get("loudness", []), lo, hi)
        if loud is not None:
            phrase += f" at {loud:.0f} dBFS"
            used.add("loudness")
        if by_name.get("pause"):
            p = by_name["pause"]
            phrase += f" with {_plural(len(p), 'pause')} (longest {max(float(c['value']) for c in p):.1f} s)"
            used.add("pause")
        phrases.append(phrase)
        used.add("voice_activity")
    for name, sel in by_name.items():
        if name in used:
            continue
        s, e = extent(sel)
        mean = _wmean(sel, lo, hi)
        if mean is None:
            mean = sum(float(c["value"]) for c in sel) / len(sel)
        if name == "loudness":
            phrases.append(f"voice at {mean:.0f} dBFS over {s:.1f}-{e:.1f} s")
        elif name == "loudness_variation":
            phrases.append(f"loudness varying by {mean:.1f} dB")
        elif name == "pitch":
            phrases.append(f"pitch around {mean:.0f} Hz over {s:.1f}-{e:.1f} s")
        elif name in ("raised_pitch", "raised_loudness"):
            top = max(sel, key=lambda c: float(c["value"]))
            if name == "raised_pitch":
                size = f"{float(top['value']):.1f} semitones above this speaker's usual {top.get('reference_hz', 0):.0f} Hz"
                phrases.append(f"pitch {size} over {s:.1f}-{e:.1f} s")
            else:
                size = f"{float(top['value']):.0f} dB louder than this speaker's usual {top.get('reference_db', 0):.0f} dBFS"
                phrases.append(f"voice {size} over {s:.1f}-{e:.1f} s")
        elif name == "pitch_variation":
            phrases.append(f"pitch varying by {mean:.1f} semitones")
        elif name == "pause":
            phrases.append(f"{_plural(len(sel), 'pause')} between {s:.1f} and {e:.1f} s "
                           f"(longest {max(float(c['value']) for c in sel):.1f} s)")
        elif name == "long_silence":
            total = sum(overlap(c, lo, hi) for c in sel)
            phrases.append(f"no voice for {total:.1f} s ({s:.1f}-{e:.1f} s)")
        elif name == "motion_energy":
            phrases.append(f"motion level {mean:.1f} over {s:.1f}-{e:.1f} s")
        elif name == "stillness":
            total = sum(overlap(c, lo, hi) for c in sel)
            phrases.append(f"still for {total:.1f} s ({s:.1f}-{e:.1f} s)")
        elif name in ("head_nod", "head_shake"):
            count = int(round(sum(float(c["value"]) for c in sel)))
            rates = [float(c["rate_hz"]) for c in sel if "rate_hz" in c]
            amps = [float(c["amplitude"]) for c in sel if "amplitude" in c]
            verb = "nodded" if name == "head_nod" else "shook"
            phrase = f"head {verb} {_plural(count, 'time')}"
            if rates:
                phrase += f" at {sum(rates) / len(rates):.1f} Hz"
            if amps:
                phrase += f" ({100 * max(amps):.0f}% of face height)"
            phrases.append(phrase + f" between {s:.1f} and {e:.1f} s")
        elif name in ("look_away", "face_absent"):
            total = sum(overlap(c, lo, hi) for c in sel)
            what = "face turned away" if name == "look_away" else "no face in view"
            phrases.append(f"{what} for {total:.1f} s ({s:.1f}-{e:.1f} s)")
        elif name in ("lean_in", "lean_back"):
            pct = 100 * (max if name == "lean_in" else min)(float(c["value"]) for c in sel)
            phrases.append(f"leaning {'in' if name == 'lean_in' else 'back'} (face at {pct:.0f}% of its "
                           f"usual size, {s:.1f}-{e:.1f} s)")
        elif name == "rising_pitch":
            ends = ", ".join(f"{float(c['end']):.1f} s" for c in sel[:3])
            phrases.append(f"pitch rising {max(float(c['value']) for c in sel):.1f} semitones at the end of "
                           f"{_plural(len(sel), 'phrase')} (ending {ends})")
        elif name == "filled_pause":
            phrases.append(f"{_plural(len(sel), 'filled pause')} ('uh'/'um', held {s:.1f}-{e:.1f} s, "
                           f"longest {max(float(c['value']) for c in sel):.1f} s)")
        elif name == "speech_rate":
            phrases.append(f"speaking at {mean:.1f} syllables/s over {s:.1f}-{e:.1f} s")
        elif name == "face_present":
            phrases.append(f"face in view over {s:.1f}-{e:.1f} s")
        elif name == "smile":  # chunks of one smile share their edge frames: count the time once
            total = ranges.total(ranges.union([(max(lo, float(c["start"])), min(hi, float(c["end"])))
                                               for c in sel if float(c["end"]) > lo and float(c["start"]) < hi]))
            phrases.append(f"smiling for {total:.1f} s ({s:.1f}-{e:.1f} s, happy-expression probability "
                           f"{max(float(c['value']) for c in sel):.2f})")
        elif name == "head_tilt":
            side = "right" if mean > 0 else "left"  # + : the eye on the image's right is lower
            phrases.append(f"head tilted {abs(mean):.0f} degrees toward the image's {side} over {s:.1f}-{e:.1f} s")
        elif sel and all("text" in c for c in sel):  # verbal lexicon hits
            said = ", ".join(f"'{c['text']}' at {float(c['start']):.1f} s" for c in sel[:4])
            phrases.append(f"said {said}" + (f" (+{len(sel) - 4} more)" if len(sel) > 4 else ""))
        elif name in ("vertical_oscillation", "horizontal_oscillation"):
            axis = "vertical" if name.startswith("vertical") else "horizontal"
            phrases.append(f"{axis} motion oscillating at {mean:.1f} Hz over {s:.1f}-{e:.1f} s")
        else:
            phrases.append(f"{name.replace('_', ' ')} {mean:.2f} over {s:.1f}-{e:.1f} s")
    if not phrases:
        return (f"{_title(signal)} scored {score:.2f} over {lo:.1f}-{hi:.1f} s, "
                f"with no measured cue to cite in this window.")
    if len(phrases) > 1:
        body = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    else:
        body = phrases[0]
    return f"{_title(signal)} ({score:.2f}) from {body}."


def clip_degraded(result: Mapping[str, Any], a: float, b: float) -> list[dict]:
    """The window's ``degraded`` entries clipped to [a, b), shaped for ``coverage.degraded``.

    A helper for the integrator (``commit`` emits no coverage events):
    ``[{"reason": ..., "ranges": [{"start": s, "end": e}, ...]}, ...]``.
    """
    out = []
    for entry in result.get("degraded") or []:
        ranges = []
        for s, e in entry.get("ranges") or []:
            s, e = max(float(s), a), min(float(e), b)
            if e > s + EPS:
                ranges.append({"start": _r(s), "end": _r(e)})
        if ranges:
            out.append({"reason": entry.get("reason", "degraded"), "ranges": ranges})
    return out


class SessionAnalysis:
    """Per-session signal, engagement, CQI and feedback state (see the module docstring)."""

    def __init__(self, settings: AnalysisSettings | None = None,
                 baseline: SessionBaselineSettings | None = None) -> None:
        # the operator's thresholds ($INTER1SRV_MODEL_SETTINGS, sections "signals", "baseline") unless given
        self.settings = settings or replace(model_settings().signals)
        # the speaker's usual pitch, loudness and face size, from the committed slices (raised_pitch,
        # raised_loudness, lean_in / lean_back: workers.session_baseline)
        self._baseline = SessionBaseline(baseline or model_settings().baseline)
        self._tracks = {s: _Track() for s in SIGNAL_TYPES}
        self._state: str | None = None
        self._pending: tuple[str, float, int] | None = None  # candidate, run start, steps
        self._last_t = -math.inf
        self._last_b: float | None = None
        self._cqi_num = dict.fromkeys(CQI_DIMENSIONS, 0.0)
        self._cqi_den = dict.fromkeys(CQI_DIMENSIONS, 0.0)
        self._windows = 0
        self._fb_count = 0
        self._history: deque[_Summary] = deque(maxlen=max(1, self.settings.feedback_every_windows))

    # ----------------------------------------------------------------- public
    @property
    def active_signals(self) -> dict[str, float]:
        """Active signals and their start times."""
        return {s: tr.start for s, tr in self._tracks.items() if tr.active}

    @property
    def engagement_state(self) -> str | None:
        return self._state

    def cumulative_cqi(self) -> dict | None:
        """Session CQI so far (time- and evidence-weighted; 50 = no evidence), or None before any window."""
        if self._windows == 0:
            return None
        return self._overall()

    def commit(self, result: WindowResult, a: float, b: float, *,
               feedback_dimensions: list[str] | None) -> list[Event]:
        """Events for the steps of ``result`` whose time is in [a, b)."""
        a, b = float(a), float(b)
        events: list[Event] = []
        if b <= a + EPS:
            return events
        if self._last_b is not None and a > self._last_b + STEP_SECONDS / 2:
            events += self._end_all(self._last_b)
            self._pending = None
        result = self._baseline.apply(result)  # type: ignore[assignment]
        times = [float(t) for t in result.get("times", [])]
        steps = [i for i, t in enumerate(times) if a - EPS <= t < b - EPS]
        cues: list[Cue] = list(result.get("cues") or [])
        modalities = {s: self._modalities(result, s) for s in SIGNAL_TYPES}
        signals = result.get("signals") or {}
        for i in steps:
            t = times[i]
            for sig in SIGNAL_TYPES:
                series = signals.get(sig) or []
                score = float(series[i]) if i < len(series) else 0.0
                events += self._step_signal(sig, t, score, result, cues, modalities[sig], b, i)
            events += self._step_engagement(result, i, t)
        self._windows += 1
        events.append(self._cqi_event(result, a, b))
        self._history.append(self._summarise(result, cues, a, b, steps))
        if feedback_dimensions is None:
            self._fb_count = 0
        else:
            self._fb_count += 1
            if self._fb_count >= max(1, self.settings.feedback_every_windows):
                self._fb_count = 0
                events.append(Event("feedback.generated", b, {"feedback": self._feedback(feedback_dimensions)}))
        self._baseline.update(result, a, b)
        self._last_b = b
        return self._order(events)

    def interrupt(self) -> list[Event]:
        """Media after the last committed window is dropped: active signals end where analysis stopped,
        so their ends go out before the ``coverage.dropped`` that follows (events stay in media order)."""
        if self._last_b is None:
            return []
        self._pending = None
        return self._order(self._end_all(self._last_b))

    def finish(self, at: float) -> list[Event]:
        """End every active signal at ``at`` (graceful close, or implicit end at disconnect)."""
        self._pending = None
        return self._order(self._end_all(float(at)))

    # ---------------------------------------------------------------- signals
    def _band(self, score: float, current: str | None = None) -> str:
        st = self.settings
        m = st.band_margin if current else 0.0
        high = st.band_high - (m if current == "high" else 0.0)
        medium = st.band_medium - (m if current in ("high", "medium") else 0.0)
        if score >= high:
            return "high"
        if score >= medium:
            return "medium"
        return "low"

    @staticmethod
    def _modalities(result: Mapping[str, Any], signal: str) -> tuple[str, ...]:
        names = set((result.get("drivers") or {}).get(signal) or [])
        mods = {str(c["modality"]) for c in result.get("cues") or [] if c["cue"] in names}
        return tuple(m for m in MODALITIES if m in mods)

    def _signal_payload(self, signal: str, tr: _Track, score: float, result: Mapping[str, Any],
                        cues: list[Cue], b: float, step: int) -> dict:
        w_start = float(result.get("start", tr.start))
        lo, hi = max(tr.start, w_start), b
        names = set((result.get("drivers") or {}).get(signal) or [])
        cited = [c for c in cues if c["cue"] in names and overlap(c, lo, hi) > 0]
        if not cited:  # scores look a few seconds around each step: cite what just preceded the span
            lo = max(w_start, lo - CONTEXT_SECONDS)
            cited = [c for c in cues if c["cue"] in names and overlap(c, lo, hi) > 0]
        cited = sorted(cited, key=lambda c: (float(c["start"]), str(c["cue"])))
        modality = list(tr.modality)
        if not modality:  # a model that names no drivers: say which modalities were observed
            ev = result.get("evidence") or {}
            modality = [m for m in MODALITIES if step < len(ev.get(m) or []) and float(ev[m][step]) > 0]
        return {
            "signal_type": signal,
            "start": _r(tr.start),
            "probability": tr.band,
            "probability_score": _r(score),
            "rationale": rationale_for(signal, cited, lo, hi, score),
            "modality": modality,
            "cues": [dict(c) for c in cited[-self.settings.max_event_cues:]],
        }

    def _step_signal(self, sig: str, t: float, score: float, result: Mapping[str, Any], cues: list[Cue],
                     modality: tuple[str, ...], b: float, step: int) -> list[Event]:
        st = self.settings
        tr = self._tracks[sig]
        if not tr.active:
            if score >= st.on_threshold:
                if tr.run_scores is None:
                    tr.run_start, tr.run_scores = t, []
                tr.run_scores.append(score)
                if len(tr.run_scores) >= st.min_on_steps:
                    mean = sum(tr.run_scores) / len(tr.run_scores)
                    tr.active, tr.start = True, tr.run_start
                    tr.band, tr.modality = self._band(mean), modality
                    tr.recent = deque(tr.run_scores[-max(1, st.min_on_steps):], maxlen=max(1, st.min_on_steps))
                    tr.reset_runs()
                    return [Event("signal.detected", tr.start,
                                  self._signal_payload(sig, tr, mean, result, cues, b, step))]
            else:
                tr.run_scores = None
            return []
        assert tr.recent is not None
        if score <= st.off_threshold:
            if tr.off_count == 0:
                tr.off_start = t
            tr.off_count += 1
            if tr.off_count >= st.min_off_steps:
                end = tr.off_start
                tr.active = False
                tr.reset_runs()
                return [Event("signal.ended", end, {"signal_type": sig, "end": _r(end)})]
            return []
        tr.off_count = 0
        tr.recent.append(score)
        # a new band counts once it holds for min_on_steps steps (one update per real change)
        band = self._band(score, tr.band)
        if band == tr.band:
            tr.band_run = None
        elif tr.band_run is None or tr.band_run[0] != band:
            tr.band_run = (band, [score])
        else:
            tr.band_run[1].append(score)
        changed = False
        if tr.band_run is not None and len(tr.band_run[1]) >= max(1, st.min_on_steps):
            tr.band, changed, tr.band_run = tr.band_run[0], True, None
        if changed or modality != tr.modality:
            tr.modality = modality
            recent = list(tr.recent)
            smooth = sum(recent) / len(recent)
            return [Event("signal.updated", t, self._signal_payload(sig, tr, smooth, result, cues, b, step))]
        return []

    def _end_all(self, at: float) -> list[Event]:
        out = []
        for sig in SIGNAL_TYPES:
            tr = self._tracks[sig]
            if tr.active:
                end = max(at, tr.start)
                out.append(Event("signal.ended", end, {"signal_type": sig, "end": _r(end)}))
                tr.active = False
            tr.reset_runs()
        return out

    # ------------------------------------------------------------- engagement
    def _step_engagement(self, result: Mapping[str, Any], i: int, t: float) -> list[Event]:
        st = self.settings
        eng_s = result.get("engagement") or (result.get("signals") or {}).get("engagement") or []
        dis_s = result.get("disengagement") or (result.get("signals") or {}).get("disengagement") or []
        e = float(eng_s[i]) if i < len(eng_s) else 0.0
        d = float(dis_s[i]) if i < len(dis_s) else 0.0
        th_e = st.engaged_on - (st.state_margin if self._state == "engaged" else 0.0)
        th_d = st.disengaged_on - (st.state_margin if self._state == "disengaged" else 0.0)
        is_e, is_d = e >= th_e, d >= th_d
        if is_e and is_d:
            cand = "engaged" if e - th_e >= d - th_d else "disengaged"
        elif is_e:
            cand = "engaged"
        elif is_d:
            cand = "disengaged"
        else:
            cand = "neutral"
        if cand == self._state:
            self._pending = None
            return []
        if self._pending is None or self._pending[0] != cand:
            self._pending = (cand, t, 1)
        else:
            self._pending = (cand, self._pending[1], self._pending[2] + 1)
        if self._pending[2] >= max(1, st.state_min_steps):
            state, start, _ = self._pending
            self._state, self._pending = state, None
            return [Event("engagement.updated", start, {"state": state, "start": _r(start)})]
        return []

    # -------------------------------------------------------------------- CQI
    @staticmethod
    def _with_index(values: dict[str, float]) -> dict[str, float]:
        out = {"quality_index": round(sum(values[d] for d in CQI_DIMENSIONS) / len(CQI_DIMENSIONS), 1)}
        out.update({d: round(values[d], 1) for d in CQI_DIMENSIONS})
        return out

    @staticmethod
    def _window_cqi(result: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
        cqi = result.get("cqi") or {}
        values, weights = {}, {}
        for d in CQI_DIMENSIONS:
            entry = cqi.get(d) or {}
            w = max(0.0, min(1.0, float(entry.get("weight", 0.0) or 0.0)))
            v = max(0.0, min(100.0, float(entry.get("value", 50.0))))
            values[d] = v if w > 0 else 50.0
            weights[d] = w
        return values, weights

    def _overall(self) -> dict[str, float]:
        return self._with_index({d: (self._cqi_num[d] / self._cqi_den[d] if self._cqi_den[d] > 0 else 50.0)
                                 for d in CQI_DIMENSIONS})

    def _cqi_event(self, result: Mapping[str, Any], a: float, b: float) -> Event:
        values, weights = self._window_cqi(result)
        dur = b - a
        for d in CQI_DIMENSIONS:
            self._cqi_num[d] += values[d] * weights[d] * dur
            self._cqi_den[d] += weights[d] * dur
        return Event("conversation_quality.updated", b, {
            "overall": self._overall(),
            "timeline": [{"start": _r(a), "end": _r(b), "values": self._with_index(values)}],
        })

    # --------------------------------------------------------------- feedback
    def _summarise(self, result: Mapping[str, Any], cues: list[Cue], a: float, b: float,
                   steps: list[int]) -> _Summary:
        def sel(name: str) -> list[Cue]:
            return [c for c in cues if c["cue"] == name and overlap(c, a, b) > 0]

        ev = result.get("evidence") or {}
        step = float(result.get("step", STEP_SECONDS))

        def seconds(modality: str) -> float:
            series = ev.get(modality) or []
            return sum(max(0.0, min(step, b - float(result["times"][i]))) * float(series[i])
                       for i in steps if i < len(series))

        va = sel("voice_activity")
        pauses = [c for c in cues if c["cue"] == "pause" and a <= (float(c["start"]) + float(c["end"])) / 2 < b]
        values, weights = self._window_cqi(result)
        return _Summary(
            a=a, b=b, values=values, weights=weights,
            audio_s=seconds("paraverbal"), video_s=seconds("nonverbal"),
            speech_s=sum(overlap(c, a, b) * float(c["value"]) for c in va),
            loud_db=_wmean(sel("loudness"), a, b),
            pauses=len(pauses), longest_pause=max((float(c["value"]) for c in pauses), default=0.0),
            motion=_wmean(sel("motion_energy"), a, b),
            still_s=sum(overlap(c, a, b) for c in sel("stillness")),
            silence_s=sum(overlap(c, a, b) for c in sel("long_silence")),
            pitch_var=_wmean(sel("pitch_variation"), a, b),
            words=self._words(cues, a, b),
            active=tuple(s for s, tr in self._tracks.items() if tr.active),
            away_s=sum(overlap(c, a, b) for c in cues if c["cue"] in ("look_away", "face_absent")),
            fillers=sum(1 for c in cues if c["cue"] == "filled_pause" and a <= float(c["start"]) < b),
        )

    @staticmethod
    def _words(cues: list[Cue], a: float, b: float) -> dict:
        out: dict[str, list[str]] = {}
        for c in cues:
            if c.get("modality") == "verbal" and "text" in c and a <= float(c["start"]) < b:
                out.setdefault(str(c["cue"]), []).append(str(c["text"]))
        return out

    def _feedback(self, dimensions: list[str]) -> str:
        recent = list(self._history)[-max(1, self.settings.feedback_every_windows):]
        span = recent[-1].b - recent[0].a
        dims = [d for d in dimensions if d in CQI_DIMENSIONS] or list(CQI_DIMENSIONS)
        measured: dict[str, float] = {}
        for d in dims:
            den = sum(s.weights[d] * (s.b - s.a) for s in recent)
            if den > 0:
                measured[d] = sum(s.values[d] * s.weights[d] * (s.b - s.a) for s in recent) / den
        audio_s = sum(s.audio_s for s in recent)
        video_s = sum(s.video_s for s in recent)
        speech_s = sum(s.speech_s for s in recent)
        loud_w = [(s.loud_db, s.speech_s) for s in recent if s.loud_db is not None and s.speech_s > 0]
        loud = (sum(x * w for x, w in loud_w) / sum(w for _, w in loud_w)) if loud_w else None
        pauses = sum(s.pauses for s in recent)
        longest = max(s.longest_pause for s in recent)
        mot_w = [(s.motion, s.b - s.a) for s in recent if s.motion is not None]
        motion = (sum(x * w for x, w in mot_w) / sum(w for _, w in mot_w)) if mot_w else None
        pv = [s.pitch_var for s in recent if s.pitch_var is not None]
        pitch_var = sum(pv) / len(pv) if pv else None

        last = f"the last {span:.0f} s"
        hedges = [w for s in recent for w in (s.words or {}).get("hedge", [])]
        hedges += [w for s in recent for w in (s.words or {}).get("filler", [])]
        away = sum(s.away_s for s in recent)
        fillers = sum(s.fillers for s in recent)
        if len(hedges) + fillers >= 2 and any("hesitation" in s.active or "uncertainty" in s.active for s in recent):
            quoted = ", ".join([f"'{w}'" for w in hedges[:3]] + ([_plural(fillers, "filled pause")] if fillers else []))
            return (f"You hedged {_plural(len(hedges) + fillers, 'time')} in {last} ({quoted}): "
                    f"state your main point plainly and drop the qualifiers.")
        if away >= 0.4 * span and any("disengagement" in s.active for s in recent):
            return (f"The listener's face was turned away or out of view for {away:.0f} of {last}: "
                    f"pause and ask a direct question to bring them back in.")
        if audio_s <= 0:
            voice = "no audio received"
        elif speech_s <= 0.2:
            voice = f"no voice in {audio_s:.0f} s of audio"
        else:
            voice = f"voice active {100 * speech_s / audio_s:.0f}% of the time"
            if loud is not None:
                voice += f" at {loud:.0f} dBFS"
        if video_s <= 0 or motion is None:
            body = "no video"
        elif motion < 1.0:
            body = f"little motion (level {motion:.1f})"
        else:
            body = f"motion level {motion:.1f}"
        pause_txt = (f"{_plural(pauses, 'pause')}, longest {longest:.1f} s" if pauses
                     else "no pauses over 0.3 s")

        if not measured:
            if audio_s <= 0 and video_s <= 0:
                return f"Nothing could be measured in {last}: check that your camera and microphone are on."
            names = " and ".join(dims) if len(dims) <= 2 else ", ".join(dims[:-1]) + " and " + dims[-1]
            if speech_s <= 0.2:
                return (f"{_title(names)} cannot be measured yet and no voice was heard in {last} "
                        f"({body}): speak up so your delivery can be assessed.")
            return (f"{_title(names)} cannot be measured yet; in {last} there was {voice} ({body}): "
                    f"ask an open question to invite the other person in.")
        focus = min(measured, key=lambda d: (measured[d], dims.index(d)))
        v = measured[focus]
        level = "low" if v < 45 else ("moderate" if v < 65 else "strong")
        if focus == "energy":
            if level == "low":
                return (f"Energy has been low for {last} ({voice}, {body}): "
                        f"vary your pitch and volume and let your gestures show.")
            if level == "moderate":
                pv_txt = f", pitch varying by {pitch_var:.1f} semitones" if pitch_var is not None else ""
                return (f"Energy is moderate over {last} ({voice}{pv_txt}, {body}): "
                        f"add more pitch variation and emphasis on key words.")
            return f"Energy is strong over {last} ({voice}, {body}): keep that liveliness going."
        if focus == "clarity":
            if level == "low":
                return (f"Clarity dipped over {last} ({pause_txt}, {voice}): "
                        f"finish each thought before pausing and keep your voice steady.")
            if level == "moderate":
                return (f"Clarity is fair over {last} ({pause_txt}): "
                        f"group your words into complete sentences with fewer breaks.")
            return f"Clarity is good over {last} ({pause_txt}, {voice}): keep speaking in complete thoughts."
        if focus == "authority":
            if level == "low":
                return (f"Authority reads low over {last} ({voice}, {pause_txt}): "
                        f"speak a little louder and land your sentences without trailing off.")
            if level == "moderate":
                return (f"Authority is moderate over {last} ({voice}, {pause_txt}): "
                        f"project your voice and cut the breaks inside sentences.")
            return f"Authority comes across well over {last} ({voice}): keep that steady, confident delivery."
        tips = {
            "rapport": "acknowledge what the other person says and mirror their pace",
            "learning": "ask a follow-up question about what you just heard",
        }
        return f"{_title(focus)} scored {v:.0f}/100 over {last} ({voice}, {body}): {tips.get(focus, 'keep going')}."

    # -------------------------------------------------------------- ordering
    def _order(self, events: list[Event]) -> list[Event]:
        out = []
        for ev in sorted(events, key=lambda e: e.t):  # stable: generation order breaks ties
            t = max(ev.t, self._last_t)
            self._last_t = t
            out.append(Event(ev.type, _r(t, 6), ev.data))
        return out
