"""Score the model on the labelled corpus, through the sequencer's own signal logic.

Windows of 8 s every 3 s (the server's default) go through the model; each
result commits its newest 3 s (the first window commits all of it) to
:class:`inter1srv.sequencer.analysis.SessionAnalysis`, exactly as the sequencer
does. The resulting ``signal.detected`` / ``signal.ended`` events give each
signal's active intervals, scored against the scripted signal labels:

- precision / recall / F1 per signal over 1 s bins (a bin is positive when at
  least half of it is inside an interval); bins within ``TOLERANCE_S`` of a
  label boundary are not counted (the script switches behaviour instantly, a
  measurement needs context);
- onset error: for each labelled interval, the detection onset (the first
  active interval overlapping it, up to 3 s after its end) minus its start;
- unmatched rationale cues: every cue cited by a signal event must match a
  real labelled cue of a compatible kind overlapping it (``CUE_MATCH``,
  ``MATCH_SLACK_S`` of slack); the count of those that do not is the number of
  hallucinated cues.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from workers.contract import AUDIO_SAMPLE_RATE, SIGNAL_TYPES, WindowInput

WINDOW_S, HOP_S = 8.0, 3.0
TOLERANCE_S = 1.0
MATCH_SLACK_S = 0.5

SPEECH = ("speech",)
STILL_KINDS = ("head_still", "silence")
# model cue -> labelled kinds it may stand for
CUE_MATCH: dict[str, tuple[str, ...]] = {
    "voice_activity": SPEECH, "loudness": SPEECH, "loudness_variation": SPEECH, "pitch": SPEECH,
    "pitch_variation": SPEECH, "speech_rate": SPEECH, "rising_pitch": SPEECH,
    "pause": ("pause", "silence"), "long_silence": ("silence",), "filled_pause": ("filler",),
    "motion_energy": ("any",), "stillness": ("head_still",),
    "vertical_oscillation": ("nod",), "horizontal_oscillation": ("shake",),
    "face_present": ("face_present",), "face_size": ("face_present",), "head_nod": ("nod",), "head_shake": ("shake",),
    "look_away": ("look_away",), "face_absent": ("face_absent",),
    "lean_in": ("lean_in",), "lean_back": ("lean_back",), "head_tilt": ("head_tilt",), "smile": ("smile",),
    # against the speaker's usual level: only where the script raised it
    "raised_pitch": ("high_pitch",), "raised_loudness": ("loud",),
}


@dataclass
class Evaluation:
    table: dict[str, dict] = field(default_factory=dict)
    cited: int = 0
    unmatched: list[dict] = field(default_factory=list)
    cue_counts: dict[str, int] = field(default_factory=dict)  # cited in signal events
    measured: dict[str, int] = field(default_factory=dict)  # in the model's window results
    verbal: dict = field(default_factory=dict)  # lexicon spotting: spotted, correct, labelled, found
    fillers: dict = field(default_factory=dict)  # filled_pause cue: detected, correct, labelled, found
    model_cpu_s_per_media_s: float = 0.0
    cache: dict = field(default_factory=dict)
    events: list = field(default_factory=list)

    def markdown(self) -> str:
        lines = ["| signal | labelled s | precision | recall | F1 | onset error (s) |",
                 "|---|---|---|---|---|---|"]
        for sig, row in self.table.items():
            if not row["labelled_s"]:
                lines.append(f"| {sig} | 0 | - | - | - | - ({row['detections']} detections, not scripted) |")
                continue
            onset = "-" if row["onset_error"] is None else f"{row['onset_error']:+.1f}"
            lines.append(f"| {sig} | {row['labelled_s']} | {row['precision']:.2f} | {row['recall']:.2f} | "
                         f"{row['f1']:.2f} | {onset} |")
        lines.append(f"\nRationale cues cited: {self.cited}; not matching a real cue in the clip: "
                     f"{len(self.unmatched)}. Model CPU: {self.model_cpu_s_per_media_s:.3f} s per media second.")
        if self.verbal:
            v = self.verbal
            lines.append(f"Lexicon spotting (ASR): {v['spotted']} phrases spotted, {v['correct']} correct; "
                         f"{v['found']} of {v['labelled']} scripted phrases found.")
        if self.fillers:
            f = self.fillers
            lines.append(f"Filled pauses (acoustic): {f['detected']} detected, {f['correct']} on a scripted filler; "
                         f"{f['found']} of {f['labelled']} scripted fillers found.")
        return "\n".join(lines)


def windows_of(frames, times, audio, a0: float, duration: float, sid: str = "eval") -> list[WindowInput]:
    out = []
    start = 0.0
    while start + WINDOW_S <= duration + 1e-6:
        end = start + WINDOW_S
        sel = (times >= start) & (times < end)
        i0 = max(0, int(round((start - a0) * AUDIO_SAMPLE_RATE)))
        i1 = max(i0, int(round((end - a0) * AUDIO_SAMPLE_RATE)))
        out.append(WindowInput(f"w{len(out)}", sid, start, end, frames[sel], times[sel], audio[i0:i1],
                               a0 + i0 / AUDIO_SAMPLE_RATE))
        start += HOP_S
    return out


def run_session(model, windows: list[WindowInput], measured: dict | None = None, verbal: list | None = None):
    """(events, cpu seconds) of the model + SessionAnalysis over the windows, in order.

    Torch runs on one thread meanwhile, as in a CPU worker (workers/service.py): the CPU seconds
    are the worker's cost, not OpenMP threads spinning on the many small ops of the face network.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_session(model, windows, measured, verbal)
    finally:
        torch.set_num_threads(threads)


def _run_session(model, windows: list[WindowInput], measured: dict | None, verbal: list | None):
    from inter1srv.sequencer.analysis import SessionAnalysis

    analysis = SessionAnalysis()
    events = []
    cpu = 0.0
    last_b = 0.0
    for w in windows:
        t0 = time.process_time()
        (result,) = model.analyze([w])
        cpu += time.process_time() - t0
        if measured is not None:
            for c in result["cues"]:
                measured[c["cue"]] = measured.get(c["cue"], 0) + 1
        if verbal is not None:
            verbal += [c for c in result["cues"] if c["modality"] == "verbal" or c["cue"] == "filled_pause"]
        a = max(w.start, last_b)
        events += analysis.commit(result, a, w.end, feedback_dimensions=["clarity", "authority", "energy",
                                                                         "rapport", "learning"])
        last_b = w.end
    events += analysis.finish(last_b)
    return events, cpu


def intervals(events, signal: str) -> list[tuple[float, float]]:
    out, start = [], None
    for ev in events:
        if ev.data.get("signal_type") != signal:
            continue
        if ev.type == "signal.detected":
            start = float(ev.data["start"])
        elif ev.type == "signal.ended" and start is not None:
            out.append((start, float(ev.data["end"])))
            start = None
    return out


def bins(ivs: list[tuple[float, float]], n: int, bin_s: float = 1.0) -> np.ndarray:
    """Which of ``n`` bins of ``bin_s`` seconds are at least half inside the intervals."""
    cov = np.zeros(n)
    for s, e in ivs:
        for k in range(max(0, int(math.floor(s / bin_s))), min(n, int(math.ceil(e / bin_s)))):
            cov[k] += max(0.0, min(e, (k + 1) * bin_s) - max(s, k * bin_s))
    return cov >= bin_s / 2


def precision_recall_f1(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """Of boolean labels ``y`` and predictions ``p`` (nothing to find and nothing found: perfect)."""
    tp = int((y & p).sum())
    prec = tp / p.sum() if p.sum() else (1.0 if not y.sum() else 0.0)
    rec = tp / y.sum() if y.sum() else (1.0 if not p.sum() else 0.0)
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return prec, rec, f1


def _matches(cue: dict, labels: list[dict]) -> bool:
    kinds = CUE_MATCH.get(cue["cue"], (cue["cue"],))
    if "any" in kinds:
        return True
    for lab in labels:
        if lab["kind"] not in kinds:
            continue
        if lab["start"] - MATCH_SLACK_S < cue["end"] and cue["start"] < lab["end"] + MATCH_SLACK_S:
            if cue["modality"] == "verbal" and "text" in cue and lab.get("text") not in (None, cue["text"]):
                continue
            return True
    return False


def evaluate(corpus, frames, times, audio, a0, model=None) -> Evaluation:
    from workers.baseline import BaselineModel

    model = model or BaselineModel("cpu")
    windows = windows_of(frames, times, audio, a0, corpus.duration)
    measured: dict[str, int] = {}
    spotted: list[dict] = []
    events, cpu = run_session(model, windows, measured, spotted)
    media_s = windows[-1].end if windows else 0.0
    n = int(math.ceil(media_s))
    ev = Evaluation(events=events, model_cpu_s_per_media_s=cpu / max(media_s, 1e-9),
                    cache=model.cache_stats() if hasattr(model, "cache_stats") else {}, measured=measured)
    boundaries = sorted({s["start"] for s in corpus.signals} | {s["end"] for s in corpus.signals}
                        | {s for _, s, _ in corpus.segments})
    care = np.ones(n, bool)
    for b in boundaries:
        for k in range(n):
            if abs(k + 0.5 - b) < TOLERANCE_S:
                care[k] = False
    for sig in SIGNAL_TYPES:
        lab = [(s["start"], min(s["end"], media_s)) for s in corpus.signals if s["signal"] == sig]
        lab = [iv for iv in lab if iv[1] > iv[0]]
        pred = intervals(events, sig)
        y, p = bins(lab, n)[care], bins(pred, n)[care]
        prec, rec, f1 = precision_recall_f1(y, p)
        errs = []
        for s, e in lab:
            # an onset: a detection starting in [s - 3, e + 3) (one running on from before is no onset)
            hits = [ps for ps, pe in pred if s - 3.0 <= ps < e + 3.0]
            if hits:
                errs.append(min(hits) - s)
        ev.table[sig] = {"labelled_s": int(round(sum(e - s for s, e in lab))), "precision": round(prec, 3),
                         "recall": round(rec, 3), "f1": round(f1, 3),
                         "onset_error": round(float(np.mean(errs)), 2) if errs else None,
                         "detections": len(pred)}
    fps = {round(float(c["start"]), 1): c for c in spotted if c["cue"] == "filled_pause"}
    spotted = [c for c in spotted if c["cue"] != "filled_pause"]
    filler_labels = [lab for lab in corpus.cues if lab["kind"] == "filler"]
    ev.fillers = {"detected": len(fps), "correct": sum(_matches(c, filler_labels) for c in fps.values()),
                  "labelled": len(filler_labels),
                  "found": sum(any(_matches(c, [lab]) for c in fps.values()) for lab in filler_labels)}
    unique = {(c["cue"], c.get("text"), round(float(c["start"]), 1)): c for c in spotted}
    lex = [lab for lab in corpus.cues if "text" in lab and lab["kind"] not in ("speech", "filler")]
    correct = [c for c in unique.values() if _matches(c, lex)]
    found = [lab for lab in lex if any(c.get("text") == lab["text"] and _matches(c, [lab]) for c in unique.values())]
    ev.verbal = {"spotted": len(unique), "correct": len(correct), "labelled": len(lex), "found": len(found)}
    for e in events:
        if e.type in ("signal.detected", "signal.updated"):
            for c in e.data.get("cues", []):
                ev.cited += 1
                ev.cue_counts[c["cue"]] = ev.cue_counts.get(c["cue"], 0) + 1
                if not _matches(c, corpus.cues):
                    ev.unmatched.append({"signal": e.data["signal_type"], **c})
    return ev
