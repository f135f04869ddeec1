"""The baseline cue model: honest, interpretable measurements mapped to the contract.

It measures only what the window's arrays show, batched over windows: faces with
:mod:`workers.face` (MTCNN or Haar), words with :mod:`workers.asr` gated by voice
activity (:mod:`workers.spotting`), filled pauses with :mod:`workers.fillers`, and in Torch
:mod:`workers.features` does the signal processing on ``self.device`` for the
whole batch; the small per-frame results come back to the host, where runs are
cut into cue episodes and the cues are rasterised onto the 0.5 s steps.
Signal scores are computed from those rasterised cues only, so a signal can
rise only where a cue it lists in ``drivers`` was measured.

Cues (``Cue.cue``, modality, unit of ``Cue.value``)
===================================================

======================  ==========  ==============================================================
cue                     modality    value
======================  ==========  ==============================================================
voice_activity          paraverbal  fraction 0-1 of the episode inside speech (voiced runs with
                                    gaps < 0.3 s bridged); episodes are speech regions cut into
                                    chunks of at most 2 s
loudness                paraverbal  dBFS: RMS level of the voiced 20 ms frames (power average)
loudness_variation      paraverbal  dB: standard deviation of the voiced frames' levels
pitch                   paraverbal  Hz: median F0 of the voiced frames (70-400 Hz)
pitch_variation         paraverbal  semitones: standard deviation of F0 over the voiced frames
pause                   paraverbal  seconds: a silent gap of 0.3-2 s between two voiced runs
long_silence            paraverbal  seconds: a stretch of >= 2 s of audio without voice
filled_pause            paraverbal  seconds: a held, flat, spectrally steady voiced run of 0.3-1.2 s set
                                    off by silence, starting on its vowel ("uh", "um"; :mod:`workers.fillers`)
motion_energy           nonverbal   grey levels (0-255) per pixel: mean absolute difference of
                                    consecutive 80x60 grayscale frames, per 0.1 s; chunks <= 2 s
stillness               nonverbal   seconds: a stretch of >= 1 s with motion_energy < 0.6
vertical_oscillation    nonverbal   Hz: the moving region oscillates up-down at 1.5-4.5 Hz
                                    (consistent with a head nod; no face detector confirms it)
horizontal_oscillation  nonverbal   Hz: the same, left-right (consistent with a head shake)
======================  ==========  ==============================================================

The numbers in the table are the defaults of the operator's settings (:mod:`workers.thresholds`:
the ``voice``, ``fillers`` and ``motion`` sections; the face cues' thresholds are its ``face`` section).

Voice activity: a 20 ms frame is voiced when its level exceeds an adaptive
threshold, ``max(min(floor, -40) + 10, -50)`` dBFS with ``floor`` the 10th
percentile of the window's frame levels, AND its normalised autocorrelation
peak (70-400 Hz) is >= 0.5, so broadband noise is not speech. Voiced runs
shorter than 60 ms are dropped. Missing audio is neither speech nor silence:
it yields no paraverbal cue at all.

Signals, per 0.5 s step, from the cues overlapping a context of 2 s (3 s for
pauses) centred on the step, shifted inside the window at its edges (so the
newest steps, the ones the sequencer commits, use the window's last seconds).
The weights of each signal are the ``contrib`` table in :meth:`BaselineModel._scores`: one
term per cue, each a documented transform of that cue's raster (e.g. stress = motion energy,
fast speech rate, strain words; agreement = head nods and affirmations). Terms that compare a
speaker with their own usual level (raised pitch for stress, raised loudness for frustration)
and leaning in or back against the usual face size need what the session showed before this
window: the sequencer adds them
(:mod:`workers.session_baseline`), so a window's result does not depend on which worker saw
the session's earlier windows. ``drivers[signal]`` lists the cues whose term reached 0.05 at some step,
largest first. Besides the cues in the table above, the face cues (``face_present``,
``head_nod``, ``head_shake``, ``look_away``, ``face_absent``, ``head_tilt``, ``smile`` (the happy-expression
probability of :mod:`workers.expression`; it adds to agreement that nods or affirmations show, never
on its own), and the measurement
``face_size``, which feeds them only through the session baseline: :func:`workers.face.face_cues`),
``speech_rate``, ``rising_pitch`` and the verbal lexicon categories (:mod:`workers.lexicon`) feed them.

CQI: clarity (fluency, level) and authority (level, fluency, steadiness) are
weighted by paraverbal evidence and the amount of speech; energy blends
speech activity and pitch variation (weighted by audio coverage) with motion
(weighted by video coverage), raised by the share of face time spent smiling; rapport weighs nods,
affirmations and smiling against shakes, negations and strain words (video and verbal evidence); learning counts interest and
confusion phrases and seconds of leaning in (:func:`workers.session_baseline.learning_cqi`).
A dimension with no such cue stays 50 with weight 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from workers import fillers, spotting
from workers.asr import AsrBackend, AsrCache, make_backend
from workers.contract import (
    AUDIO_SAMPLE_RATE,
    DRIVER_MIN,
    SIGNAL_TYPES,
    STEP_SECONDS,
    Cue,
    WindowInput,
    WindowResult,
)
from workers.cuda_numerics import use_full_float32
from workers.dali_media import make_gray
from workers.face import FaceCache, FaceTracker, MtcnnTracker, face_cues, make_tracker
from workers.features import (
    AUDIO_HOP,
    MOTION_REF_DT,
    audio_features,
    motion_features,
)
from workers.session_baseline import learning_cqi
from workers.session_cache import FrameTimeCache, time_key
from workers.signal_shapes import ramp, raster, reversal_hz, step_contexts
from workers.signal_shapes import runs as _runs
from workers.thresholds import ModelSettings, MotionSettings, model_settings

HOP_S = AUDIO_HOP / AUDIO_SAMPLE_RATE  # 0.02 s

# voice activity, pauses, prosody, filled pauses, spotting, face and motion cues: the operator's
# settings (``workers.thresholds``: VoiceSettings, ProsodySettings, FillerSettings, SpottingSettings,
# FaceSettings, MotionSettings)

# evidence and coverage bookkeeping (what counts as missing media; not cue thresholds)
FRAME_HOLD_S = 0.25  # a frame stands for +/- this much time (evidence, gaps)
VIDEO_GAP_S = 1.0
AUDIO_GAP_S = 0.05

EPS = 1e-6
PARAVERBAL_CUES = (
    "speech_rate", "rising_pitch", "voice_activity", "loudness", "loudness_variation", "pitch", "pitch_variation", "pause", "long_silence",
    "filled_pause",
)
FACE_CUES = ("face_present", "face_size", "head_nod", "head_shake", "look_away", "face_absent", "head_tilt", "smile")
NONVERBAL_CUES = ("motion_energy", "stillness", "vertical_oscillation", "horizontal_oscillation", *FACE_CUES)


FILLER_SLACK_S = 0.2  # word timestamps of a transcribing backend drift by about this much


def one_filler_per_sound(verbal: list[Cue], cues: list[Cue]) -> list[Cue]:
    """``verbal`` without the ``filler`` words ("um", "uh" from a transcribing backend such as
    whisper) that overlap a measured ``filled_pause`` (within ``FILLER_SLACK_S``): one sound,
    counted once (the acoustic cue keeps its held duration)."""
    held = [(c["start"] - FILLER_SLACK_S, c["end"] + FILLER_SLACK_S) for c in cues if c["cue"] == "filled_pause"]
    return [c for c in verbal
            if c["cue"] != "filler" or not any(s < c["end"] and c["start"] < e for s, e in held)]


def _chunks(a: int, b: int, max_len: int) -> Iterable[tuple[int, int]]:
    n = max(1, math.ceil((b - a) / max_len))
    edges = np.linspace(a, b, n + 1).round().astype(int)
    for i in range(n):
        if edges[i + 1] > edges[i]:
            yield int(edges[i]), int(edges[i + 1])


def _nuclei(db: np.ndarray, active: np.ndarray, nucleus_db: float, gap_s: float) -> int:
    """Syllable nuclei: level peaks inside speech at least ``nucleus_db`` above the dips around them,
    at least ``gap_s`` apart (de Jong & Wempe 2009, simplified to the level envelope)."""
    if db.size < 3:
        return 0
    k = np.convolve(db, np.ones(3) / 3, mode="same")
    gap = int(round(gap_s / HOP_S))
    count, last = 0, -gap
    for i in range(1, k.size - 1):
        if not active[i] or k[i] < k[i - 1] or k[i] < k[i + 1] or i - last < gap:
            continue
        lo = k[max(0, i - gap): i + gap + 1].min()
        if k[i] - lo >= nucleus_db:
            count, last = count + 1, i
    return count


def _cue(modality: str, name: str, value: float, start: float, end: float) -> Cue:
    return {"modality": modality, "cue": name, "value": round(float(value), 3),
            "start": round(float(start), 3), "end": round(float(end), 3)}


def _intervals_complement(covered: list[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    out = []
    cur = start
    for s, e in sorted(covered):
        s, e = max(s, start), min(e, end)
        if e <= s:
            continue
        if s > cur:
            out.append((cur, s))
        cur = max(cur, e)
    if cur < end:
        out.append((cur, end))
    return out


def _coverage(intervals: list[tuple[float, float]], times: np.ndarray, step: float) -> np.ndarray:
    """Fraction of each step [t, t+step) covered by the (disjoint) intervals."""
    cov = np.zeros(len(times))
    for s, e in intervals:
        cov += np.clip(np.minimum(times + step, e) - np.maximum(times, s), 0.0, None)
    return np.clip(cov / step, 0.0, 1.0)


class BaselineModel:
    """Measured paraverbal and motion cues -> signal scores (see the module docstring)."""

    name = "baseline-cues-v2"

    def __init__(self, device: str = "cpu", *, asr: str | AsrBackend | None = None, faces: bool | str = True,
                 settings: ModelSettings | None = None, media: str | None = None) -> None:
        self.settings = settings or model_settings()  # cue thresholds: $INTER1SRV_MODEL_SETTINGS or defaults
        self.device = str(device)
        self._device = torch.device(device)
        use_full_float32(self._device)  # the CPU's float32 results on CUDA too
        self.asr: AsrBackend = make_backend(asr) if asr is None or isinstance(asr, str) else asr
        self.asr_cache = AsrCache()
        # 80x60 grey frames of the motion cues, per session and frame time (each frame is in 2-3 windows)
        self.gray_cache: FrameTimeCache[torch.Tensor] = FrameTimeCache()
        self.to_gray = make_gray(media, self._device)  # torch or DALI ($INTER1SRV_MEDIA): same values
        self.face: FaceTracker | MtcnnTracker | None = None
        if faces:  # True: $INTER1SRV_FACE or auto; or "haar" / "mtcnn" / "auto"
            try:
                self.face = make_tracker(None if faces is True else str(faces), self.device,
                                         settings=self.settings.face)
            except ImportError:  # OpenCV missing: no face cues, evidence says so
                self.face = None

    def cache_stats(self) -> dict:
        """Per-worker cache hit rates (face frames, ASR regions) and seconds of audio decoded."""
        out = {"asr_hits": self.asr_cache.hits, "asr_misses": self.asr_cache.misses,
               "asr_decoded_s": round(self.asr_cache.decoded_s, 3),
               "gray_hits": self.gray_cache.hits, "gray_misses": self.gray_cache.misses,
               "media": self.to_gray.backend}
        if self.face is not None:
            out.update(face_detector=self.face.kind, face_hits=self.face.cache.hits,
                       face_misses=self.face.cache.misses,
                       face_hit_rate=round(self.face.cache.hit_rate, 4))
        return out

    def forget(self, session_id: str) -> None:
        """Drop what the caches hold for an ended session (a later window of it would only recompute)."""
        self.asr_cache.forget(session_id)
        self.gray_cache.forget(session_id)
        if self.face is not None:
            self.face.cache.forget(session_id)

    def clear_caches(self) -> None:
        """Empty every per-session cache (as on a worker that never saw any session)."""
        self.asr_cache = AsrCache()
        self.gray_cache = FrameTimeCache()
        if self.face is not None:
            self.face.cache = FaceCache()

    # ------------------------------------------------------------------ batch
    def analyze(self, windows: list[WindowInput]) -> list[WindowResult]:
        if not windows:
            return []
        with torch.inference_mode():
            audio = self._audio_batch(windows)
            video = self._video_batch(windows)
            recs = self._face_batch(windows)
        return [self._result(w, a, v, r) for w, a, v, r in zip(windows, audio, video, recs, strict=True)]

    def _face_batch(self, windows: list[WindowInput]) -> list[list | None]:
        """Face records of every window of the batch in one call (MTCNN batches them on the device)."""
        if self.face is None:
            return [None] * len(windows)
        todo = [i for i, w in enumerate(windows) if w.frames.shape[0] > 0]
        items = [(windows[i].session_id, windows[i].frames,
                  np.asarray(windows[i].frame_times, dtype=np.float64)[: windows[i].frames.shape[0]]) for i in todo]
        out: list[list | None] = [None] * len(windows)
        for i, recs in zip(todo, self.face.frames_batch(items), strict=True):
            out[i] = recs
        return out

    def _audio_batch(self, windows: list[WindowInput]) -> list[dict | None]:
        lengths = [int(w.audio.shape[0]) for w in windows]
        n_max = max(lengths)
        if n_max < AUDIO_HOP:
            return [None] * len(windows)
        batch = np.zeros((len(windows), n_max), dtype=np.float32)
        for i, w in enumerate(windows):
            batch[i, : lengths[i]] = w.audio
        x = torch.from_numpy(batch).to(self._device)
        feats = audio_features(x)
        db, voicing = feats["db"], feats["voicing"]
        n_hops = db.shape[1]
        hop_idx = torch.arange(n_hops, device=self._device)
        # a hop counts when it lies in the window and inside the window's own samples
        starts = torch.tensor([w.audio_start - w.start for w in windows], dtype=torch.float64, device=self._device)
        spans = torch.tensor([w.end - w.start for w in windows], dtype=torch.float64, device=self._device)
        n_own = torch.tensor([n // AUDIO_HOP for n in lengths], device=self._device)
        rel = starts[:, None] + hop_idx[None, :].to(torch.float64) * HOP_S
        valid = (hop_idx[None, :] < n_own[:, None]) & (rel >= -EPS) & (rel + HOP_S <= spans[:, None] + EPS)
        v = self.settings.voice
        floor = torch.nanquantile(torch.where(valid, db, torch.full_like(db, float("nan"))), v.floor_percentile, dim=1)
        floor = torch.nan_to_num(floor, nan=v.floor_cap_db).clamp_max(v.floor_cap_db)
        threshold = (floor + v.above_floor_db).clamp_min(v.min_threshold_db)
        voiced = valid & (db > threshold[:, None]) & (voicing >= v.voicing_min)
        host = {k: t.cpu().numpy() for k, t in
                {"db": db, "f0": feats["f0"], "flux": feats["flux"], "valid": valid, "voiced": voiced,
                 "threshold": threshold}.items()}
        out: list[dict | None] = []
        for i in range(len(windows)):
            k = lengths[i] // AUDIO_HOP  # from the host list: no device sync per window
            if not host["valid"][i, :k].any():
                out.append(None)
                continue
            out.append({"db": host["db"][i, :k], "f0": host["f0"][i, :k], "flux": host["flux"][i, :k],
                        "valid": host["valid"][i, :k],
                        "voiced": host["voiced"][i, :k], "threshold": float(host["threshold"][i])})
        return out

    def _video_batch(self, windows: list[WindowInput]) -> list[dict | None]:
        grays, dts = [], []
        for w in windows:
            grays.append(self._gray(w))
            ft = np.asarray(w.frame_times, dtype=np.float64)
            dts.append(np.diff(ft) if ft.size > 1 else np.zeros(0))
        t_max = max(g.shape[0] for g in grays)
        if t_max < 2:
            return [None] * len(windows)
        b = len(windows)
        gray = torch.zeros((b, t_max) + tuple(grays[0].shape[1:]), dtype=torch.float32, device=self._device)
        dt = np.zeros((b, t_max - 1), dtype=np.float32)
        for i, g in enumerate(grays):
            gray[i, : g.shape[0]] = g
            d = dts[i].astype(np.float32)
            dt[i, : d.size] = np.where((d > 0) & (d <= self.settings.motion.max_pair_dt), d, 0.0)
        feats = motion_features(gray, torch.from_numpy(dt).to(self._device))
        host = {k: v.cpu().numpy() for k, v in feats.items()}
        out: list[dict | None] = []
        for i, w in enumerate(windows):
            n = grays[i].shape[0]
            if n < 1:
                out.append(None)
                continue
            out.append({"times": np.asarray(w.frame_times, dtype=np.float64)[:n], "dt": dt[i, : max(0, n - 1)],
                        **{k: v[i, : max(0, n - 1)] for k, v in host.items()}})
        return out

    def _gray(self, w: WindowInput) -> torch.Tensor:
        """The window's 80x60 grey frames, converting only the frames no earlier window of the session
        converted on this worker (the conversion is per frame, so cached frames are the same values)."""
        n = w.frames.shape[0]
        keys = [time_key(t) for t in np.asarray(w.frame_times, dtype=np.float64)[:n]]
        if n == 0 or len(set(keys)) < n:  # two frames at one millisecond cannot share a key: no cache
            return self.to_gray(w.frames)
        cached = self.gray_cache.session(w.session_id)
        todo = np.array([k not in cached for k in keys])
        self.gray_cache.misses += int(todo.sum())
        self.gray_cache.hits += n - int(todo.sum())
        for a, b in _runs(todo):  # contiguous frames: one strided view each
            gray = self.to_gray(w.frames[a:b])
            for i in range(a, b):
                cached[keys[i]] = gray[i - a].clone()  # a view would keep the whole block alive
        out = torch.stack([cached[k] for k in keys])
        self.gray_cache.drop_before(w.session_id, w.start)
        return out

    # ------------------------------------------------------------ per window
    def _result(self, w: WindowInput, audio: dict | None, video: dict | None, recs: list | None = None,
                ) -> WindowResult:
        start, end = float(w.start), float(w.end)
        n_steps = max(0, math.ceil((end - start) / STEP_SECONDS - 1e-9))
        times = np.round(start + np.arange(n_steps) * STEP_SECONDS, 6)
        cues: list[Cue] = []
        degraded: list[dict] = []

        # ---- evidence and coverage
        a_cov: list[tuple[float, float]] = []
        if w.audio.shape[0] > 0:
            a0 = float(w.audio_start)
            a_cov = [(max(start, a0), min(end, a0 + w.audio.shape[0] / AUDIO_SAMPLE_RATE))]
            a_cov = [iv for iv in a_cov if iv[1] > iv[0]]
        missing_audio = [iv for iv in _intervals_complement(a_cov, start, end) if iv[1] - iv[0] > AUDIO_GAP_S]
        if missing_audio:
            degraded.append({"reason": "no_audio", "ranges": [[round(float(s), 3), round(float(e), 3)] for s, e in missing_audio]})
        ft = np.asarray(w.frame_times, dtype=np.float64)[: w.frames.shape[0]]
        v_cov = self._frame_coverage(ft, start, end)
        gaps = [iv for iv in _intervals_complement(v_cov, start, end) if iv[1] - iv[0] > VIDEO_GAP_S]
        if gaps:
            degraded.append({"reason": "video_gap", "ranges": [[round(float(s), 3), round(float(e), 3)] for s, e in gaps]})
        ev_a = _coverage(a_cov, times, STEP_SECONDS)
        ev_v = _coverage(v_cov, times, STEP_SECONDS)
        ev_w = np.zeros(n_steps)

        # ---- cues
        speech: np.ndarray | None = None  # per 20 ms hop: inside an utterance (voiced runs, short gaps bridged)
        if audio is not None:
            audio_cues, speech = self._audio_cues(w, audio)
            cues += audio_cues
        if video is not None:
            cues += self._video_cues(video, start, end)
        if self.face is not None and w.frames.shape[0] > 0:
            if recs is None:
                recs = self.face.frames(w.session_id, w.frames, ft)
            fc, no_face = face_cues(recs, start, end, cfg=self.settings.face)
            cues += fc
            if no_face:
                # wire reason "video_gap" (partial visual coverage): the official SDK accepts no other
                # value; "detail" says why
                degraded.append({"reason": "video_gap", "detail": "no_face",
                                 "ranges": [[round(float(s), 3), round(float(e), 3)] for s, e in no_face]})
            seen = _coverage([(c["start"], c["end"]) for c in fc if c["cue"] == "face_present"], times, STEP_SECONDS)
            ev_v = ev_v * np.maximum(seen, 0.25)  # video without a face still shows motion
        elif self.face is None:
            ev_v = ev_v * 0.25
        if speech is not None and audio is not None and speech.any() and self.asr.name != "none":
            verbal, spotted = self._verbal_cues(w, speech, audio)
            cues += one_filler_per_sound(verbal, cues)
            ev_w = _coverage(spotted, times, STEP_SECONDS)
        cues.sort(key=lambda c: (c["start"], c["end"], c["cue"]))

        signals, eng, dis, drivers = self._scores(cues, times, start, end)
        cqi = self._cqi(cues, ev_a, ev_v, ev_w, still_level=self.settings.motion.still_level)
        return {
            "start": start,
            "end": end,
            "step": STEP_SECONDS,
            "times": times.tolist(),
            "signals": {k: [round(float(x), 4) for x in v] for k, v in signals.items()},
            "engagement": [round(float(x), 4) for x in eng],
            "disengagement": [round(float(x), 4) for x in dis],
            "evidence": {
                "verbal": [round(float(x), 4) for x in ev_w],
                "paraverbal": [round(float(x), 4) for x in ev_a],
                "nonverbal": [round(float(x), 4) for x in ev_v],
            },
            "cues": cues,
            "drivers": drivers,
            "cqi": cqi,
            "degraded": degraded,
        }

    @staticmethod
    def _frame_coverage(ft: np.ndarray, start: float, end: float) -> list[tuple[float, float]]:
        cov: list[tuple[float, float]] = []
        for t in ft:
            s, e = max(start, t - FRAME_HOLD_S), min(end, t + FRAME_HOLD_S)
            if e <= s:
                continue
            if cov and s <= cov[-1][1] + EPS:
                cov[-1] = (cov[-1][0], max(cov[-1][1], e))
            else:
                cov.append((s, e))
        return cov

    def _audio_cues(self, w: WindowInput, a: dict) -> tuple[list[Cue], np.ndarray]:
        db, f0, valid = a["db"], a["f0"], a["valid"]
        voiced = a["voiced"].copy()
        v, pr = self.settings.voice, self.settings.prosody
        for s, e in _runs(voiced):
            if e - s < v.min_voiced_hops:
                voiced[s:e] = False
        t0 = float(w.audio_start)

        def ts(i: int) -> float:
            return t0 + i * HOP_S

        cues: list[Cue] = []
        bridge = int(round(v.bridge_s / HOP_S))
        long_hops = int(round(v.long_silence_s / HOP_S))
        runs = _runs(voiced)
        active = voiced.copy()
        regions: list[list[int]] = []
        for k, (s, e) in enumerate(runs):
            if k > 0:
                ps, pe = runs[k - 1]
                gap_ok = bool(valid[pe:s].all())
                gap = s - pe
                if gap_ok and gap < bridge:
                    active[pe:s] = True
                elif gap_ok and gap < long_hops:
                    cues.append(_cue("paraverbal", "pause", gap * HOP_S, ts(pe), ts(s)))
                if gap_ok and gap < long_hops:
                    regions[-1][1] = e
                    continue
            regions.append([s, e])
        for s, e in _runs(valid & ~voiced):
            if e - s >= long_hops:
                cues.append(_cue("paraverbal", "long_silence", (e - s) * HOP_S, ts(s), ts(e)))
        chunk = int(round(v.chunk_s / HOP_S))
        for rs, re_ in regions:
            for s, e in _chunks(rs, re_, chunk):
                vm = voiced[s:e]
                if vm.sum() < v.min_voiced_hops:
                    continue
                cs, ce = ts(s), ts(e)
                cues.append(_cue("paraverbal", "voice_activity", active[s:e].mean(), cs, ce))
                speech_s = float(active[s:e].sum()) * HOP_S
                if speech_s >= pr.min_rate_s:
                    nuclei = _nuclei(db[s:e], active[s:e], pr.nucleus_db, pr.nucleus_gap_s)
                    cues.append(_cue("paraverbal", "speech_rate", nuclei / speech_s, cs, ce))
                levels = db[s:e][vm]
                cues.append(_cue("paraverbal", "loudness", 10 * np.log10(np.mean(10 ** (levels / 10))), cs, ce))
                if levels.size >= v.min_stats_hops:
                    cues.append(_cue("paraverbal", "loudness_variation", np.std(levels), cs, ce))
                pitches = f0[s:e][vm]
                if pitches.size >= v.min_stats_hops:
                    med = float(np.median(pitches))
                    cues.append(_cue("paraverbal", "pitch", med, cs, ce))
                    cues.append(_cue("paraverbal", "pitch_variation", np.std(12 * np.log2(pitches / med)), cs, ce))
        for s, e in fillers.filled_pauses(runs, valid, f0, a["flux"], HOP_S, self.settings.fillers, db=db,
                                          speech_db=a["threshold"]):
            cues.append(_cue("paraverbal", "filled_pause", (e - s) * HOP_S, ts(s), ts(e)))
        # rising terminal pitch: the last voiced part of an utterance that ended inside the audio
        # against the part before it
        n_all = voiced.size
        for s, e in _runs(active):
            if e >= n_all - 2 or not valid[e:min(n_all, e + 5)].all():
                continue  # the utterance may go on after the window: its end is not known yet
            idx = np.flatnonzero(voiced[s:e]) + s
            if idx.size < pr.rise_min_hops:
                continue
            contour = f0[idx]
            smooth = np.array([np.median(contour[max(0, k - 1):k + 2]) for k in range(contour.size)])
            end_f0 = float(np.median(contour[-pr.rise_tail:]))
            k_dip = int(np.argmin(smooth[-pr.rise_look:-pr.rise_tail])) + contour.size - pr.rise_look
            st_rise = 12 * np.log2(end_f0 / max(float(smooth[k_dip]), 1.0))
            if st_rise >= pr.rise_st:
                tail = idx[k_dip:]
                cues.append(_cue("paraverbal", "rising_pitch", st_rise, ts(int(tail[0])), ts(int(tail[-1]) + 1)))
        return cues, active

    def _verbal_cues(self, w: WindowInput, speech: np.ndarray, a: dict) -> tuple[list[Cue], list[tuple[float, float]]]:
        """Lexicon hits of the window's utterances (ASR gated by voice activity, each utterance decoded
        once per session: :mod:`workers.spotting`), and the utterance spans whose words they report."""
        from workers.lexicon import phrase_category

        cats = phrase_category()
        a0 = float(w.audio_start)
        pieces = spotting.plan(speech, a["valid"], a["db"], a0, HOP_S, a0 + w.audio.shape[0] / AUDIO_SAMPLE_RATE,
                               session_start=float(w.start) <= EPS, bridge_s=self.settings.voice.bridge_s,
                               cfg=self.settings.spotting)
        out: list[Cue] = []
        for phrase, hs, he in spotting.spot(pieces, w.audio, a0, w.session_id, self.asr, self.asr_cache):
            hs, he = max(float(w.start), hs), min(float(w.end), max(he, hs + 0.1))
            if he > hs:
                c = _cue("verbal", cats[phrase], 1.0, hs, he)
                c["text"] = phrase  # type: ignore[typeddict-unknown-key]
                out.append(c)
        return out, spotting.decoded_coverage(pieces)

    def _video_cues(self, v: dict, start: float, end: float) -> list[Cue]:
        cfg = self.settings.motion
        times, dt, motion = v["times"], v["dt"], v["motion"]
        pair_ok = dt > 0
        cues: list[Cue] = []
        if not pair_ok.any():
            return cues
        # median of 3 over each run of valid pairs: one codec keyframe does not break stillness
        smooth = motion.copy()
        for s, e in _runs(pair_ok):
            if e - s >= 3:
                seg = motion[s:e]
                padded = np.concatenate([seg[:1], seg, seg[-1:]])
                smooth[s:e] = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)

        def ps(i: int) -> float:
            return float(np.clip(times[i], start, end))

        def pe(i: int) -> float:
            return float(np.clip(times[i + 1], start, end))

        max_pairs = max(2, int(round(cfg.chunk_s / MOTION_REF_DT)))
        for s, e in _runs(pair_ok):
            for cs, ce in _chunks(s, e, max_pairs):
                if pe(ce - 1) - ps(cs) <= EPS:
                    continue
                level = float(np.mean(smooth[cs:ce]))
                cues.append(_cue("nonverbal", "motion_energy", level, ps(cs), pe(ce - 1)))
                osc = self._oscillation(v["dx"][cs:ce], v["dy"][cs:ce], pe(ce - 1) - ps(cs), level, cfg)
                if osc is not None:
                    cues.append(_cue("nonverbal", osc[0], osc[1], ps(cs), pe(ce - 1)))
            for ss, se in _runs(smooth[s:e] < cfg.still_level):
                a, b = ps(s + ss), pe(s + se - 1)
                if b - a >= cfg.min_still_s - EPS:
                    cues.append(_cue("nonverbal", "stillness", b - a, a, b))
        return cues

    @staticmethod
    def _oscillation(dx: np.ndarray, dy: np.ndarray, seconds: float, level: float,
                     cfg: MotionSettings) -> tuple[str, float] | None:
        if level < cfg.still_level or dx.size < 6 or seconds <= 0:
            return None
        ex, ey = float(np.mean(dx**2)), float(np.mean(dy**2))
        if ey >= cfg.osc_axis_ratio * ex:
            name, vel = "vertical_oscillation", dy
        elif ex >= cfg.osc_axis_ratio * ey:
            name, vel = "horizontal_oscillation", dx
        else:
            return None
        rms = math.sqrt(max(ex, ey))
        if rms < cfg.osc_min_rms:
            return None
        hz = reversal_hz(vel, rms, seconds)
        if hz is None or not cfg.osc_min_hz <= hz <= cfg.osc_max_hz:
            return None
        return name, hz

    # ---------------------------------------------------------------- scores
    _raster = staticmethod(raster)
    _context = staticmethod(step_contexts)

    def _scores(self, cues: list[Cue], times: np.ndarray, start: float, end: float):
        n = len(times)
        lo2, hi2 = self._context(times, start, end, 2.0)
        lo3, hi3 = self._context(times, start, end, 3.0)

        va_cov, va_val = self._raster(cues, "voice_activity", lo2, hi2)
        sp = va_cov * np.nan_to_num(va_val)
        loud_cov, loud = self._raster(cues, "loudness", lo2, hi2)
        _, pvar = self._raster(cues, "pitch_variation", lo2, hi2)
        pvar_n = ramp(pvar, 0.5, 3.0)
        pause_cov, _ = self._raster(cues, "pause", lo3, hi3)
        pz = ramp(pause_cov, 0.05, 0.3)
        sil, sil_len = self._raster(cues, "long_silence", lo2, hi2)
        _, mot = self._raster(cues, "motion_energy", lo2, hi2)
        mot_n = ramp(mot, self.settings.motion.still_level, 3.0)
        mot_hi = ramp(mot, 2.0, 5.0)
        still, _ = self._raster(cues, "stillness", lo2, hi2)
        osc_v, _ = self._raster(cues, "vertical_oscillation", lo2, hi2)
        osc_h, _ = self._raster(cues, "horizontal_oscillation", lo2, hi2)
        lo4, hi4 = self._context(times, start, end, 4.0)
        _, rate = self._raster(cues, "speech_rate", lo2, hi2)

        def cov(name: str, lo: np.ndarray = lo3, hi: np.ndarray = hi3) -> np.ndarray:
            return self._raster(cues, name, lo, hi)[0]

        def said(category: str) -> np.ndarray:
            """Short cues (lexicon hits, pitch rises) in the 4 s context: 1 -> 0.7, 2+ -> 1."""
            sel = [c for c in cues if c["cue"] == category]
            if not sel:
                return np.zeros(n)
            mid = np.array([(c["start"] + c["end"]) / 2 for c in sel])
            k = ((mid[None, :] >= lo4[:, None]) & (mid[None, :] < hi4[:, None])).sum(axis=1)
            return np.clip(0.4 + 0.3 * k, 0.0, 1.0) * (k > 0)

        nod, shake = cov("head_nod"), cov("head_shake")
        away, absent = cov("look_away", lo2, hi2), cov("face_absent", lo2, hi2)
        tilt = cov("head_tilt")
        face = cov("face_present", lo2, hi2)
        smile = cov("smile", lo2, hi2)
        nod_or_yes = np.clip(0.8 * nod + 0.6 * said("affirmation"), 0.0, 1.0)
        loud_hi = ramp(loud, -24.0, -14.0) * (loud_cov > 0)
        contrib: dict[str, dict[str, np.ndarray]] = {
            "engagement": {
                "voice_activity": 0.55 * 0.65 * sp,
                "pitch_variation": 0.55 * 0.35 * sp * pvar_n,
                "motion_energy": 0.35 * mot_n,
                "vertical_oscillation": 0.1 * osc_v,
                "horizontal_oscillation": 0.1 * osc_h,
                "face_present": 0.15 * face,
                "head_nod": 0.2 * nod,
            },
            "disengagement": {
                "long_silence": 0.55 * sil * ramp(sil_len, 2.0, 5.0),
                "stillness": 0.3 * still * (1.0 - np.clip(sp, 0, 1)),
                "look_away": 0.5 * away,
                "face_absent": 0.6 * absent,
            },
            "confidence": {
                "loudness": 0.5 * sp * ramp(loud, -26.0, -14.0) * (loud_cov > 0),
                "pitch_variation": 0.2 * sp * pvar_n,
                "voice_activity": 0.2 * sp * (1.0 - pz),
                "certainty_word": 0.35 * said("certainty_word"),
            },
            "hesitation": {
                "pause": 0.9 * ramp(pause_cov, 0.08, 0.3),
                "filler": 0.45 * said("filler"),
                "filled_pause": 0.45 * said("filled_pause"),
                "hedge": 0.2 * said("hedge"),
            },
            "uncertainty": {
                "hedge": 0.6 * said("hedge"),
                "filler": 0.3 * said("filler"),
                "filled_pause": 0.3 * said("filled_pause"),
                "pause": 0.3 * ramp(pause_cov, 0.08, 0.3),
                "rising_pitch": 0.25 * said("rising_pitch"),
            },
            # a smile supports agreement that nods or affirmations show (up to a quarter more); people
            # smile for many reasons, so a smile alone never reaches the on-threshold
            "agreement": {"head_nod": 0.8 * nod, "affirmation": 0.6 * said("affirmation"),
                          "smile": 0.25 * smile * nod_or_yes},
            "disagreement": {"head_shake": 0.8 * shake, "negation": 0.6 * said("negation")},
            "confusion": {"confusion_phrase": 0.8 * said("confusion_phrase"),
                          "rising_pitch": 0.3 * said("rising_pitch"),
                          "pause": 0.15 * ramp(pause_cov, 0.08, 0.3),
                          "head_tilt": 0.5 * tilt},
            "frustration": {"strain_word": 0.6 * said("strain_word"), "loudness": 0.25 * loud_hi * sp},
            # leaning in / back is measured against the session's usual face size: the sequencer adds
            # those terms (workers.session_baseline: interest and engagement, skepticism)
            "skepticism": {"doubt_phrase": 0.6 * said("doubt_phrase"), "head_tilt": 0.3 * tilt},
            "interest": {"interest_phrase": 0.6 * said("interest_phrase"), "head_nod": 0.15 * nod},
            # raised pitch against the speaker's own level: workers.session_baseline (the sequencer adds it)
            "stress": {"motion_energy": 0.5 * mot_hi,
                       "speech_rate": 0.3 * ramp(rate, 5.2, 6.5) * (sp > 0),
                       "strain_word": 0.4 * said("strain_word")},
        }
        present = {c["cue"] for c in cues}
        signals: dict[str, np.ndarray] = {}
        drivers: dict[str, list[str]] = {}
        for sig in SIGNAL_TYPES:
            parts = contrib.get(sig, {})
            total = np.zeros(n)
            ranked: list[tuple[float, str]] = []
            for cue_name, arr in parts.items():
                if cue_name not in present:  # by construction its raster is 0; keep the invariant explicit
                    continue
                total = total + arr
                peak = float(arr.max()) if n else 0.0
                if peak >= DRIVER_MIN:
                    ranked.append((peak, cue_name))
            signals[sig] = np.clip(total, 0.0, 1.0)
            drivers[sig] = [name for _, name in sorted(ranked, key=lambda x: (-x[0], x[1]))]
        return signals, signals["engagement"], signals["disengagement"], drivers

    @staticmethod
    def _cqi(cues: list[Cue], ev_a: np.ndarray, ev_v: np.ndarray, ev_w: np.ndarray | None = None, *,
             still_level: float = MotionSettings.still_level) -> dict:
        def wmean(name: str) -> float | None:
            sel = [c for c in cues if c["cue"] == name]
            dur = sum(c["end"] - c["start"] for c in sel)
            if dur <= 0:
                return None
            return sum(c["value"] * (c["end"] - c["start"]) for c in sel) / dur

        def total(name: str, weighted: bool = False) -> float:
            return sum((c["value"] if weighted else 1.0) * (c["end"] - c["start"]) for c in cues if c["cue"] == name)

        audio_s = float(ev_a.sum() * STEP_SECONDS)
        video_s = float(ev_v.sum() * STEP_SECONDS)
        speech_s = total("voice_activity", weighted=True)
        region_s = total("voice_activity")
        pause_s = total("pause") + total("filled_pause")  # silent and filled pauses: disfluent time
        out = {d: {"value": 50.0, "weight": 0.0} for d in ("clarity", "authority", "energy", "rapport", "learning")}
        mean_a = float(ev_a.mean()) if ev_a.size else 0.0
        mean_v = float(ev_v.mean()) if ev_v.size else 0.0
        if speech_s > 0.5 and region_s > 0:
            loud_n = float(ramp(np.array(wmean("loudness") if wmean("loudness") is not None else np.nan), -40, -15))
            pz = float(ramp(np.array(pause_s / region_s), 0.05, 0.35))
            lvar = wmean("loudness_variation")
            steady = 1.0 - float(ramp(np.array(lvar if lvar is not None else np.nan), 6.0, 12.0))
            w_speech = round(mean_a * min(1.0, speech_s / 3.0), 4)
            out["clarity"] = {"value": round(100 * (0.65 * (1 - pz) + 0.35 * loud_n), 1), "weight": w_speech}
            out["authority"] = {"value": round(100 * (0.55 * loud_n + 0.25 * (1 - pz) + 0.2 * steady), 1),
                                "weight": w_speech}
        parts, weights = [], []
        if audio_s > 0:
            pvar = wmean("pitch_variation")
            pvar_n = float(ramp(np.array(pvar if pvar is not None else np.nan), 0.5, 3.0))
            parts.append(0.6 * min(1.0, speech_s / audio_s) + 0.4 * pvar_n)
            weights.append(mean_a)
        face_s = total("face_present")
        # seconds of smiling per second of face in view (a smile is only measured on a frontal face)
        smiling = min(1.0, total("smile") / face_s) if face_s > 1.0 else 0.0
        if video_s > 0 and any(c["cue"] == "motion_energy" for c in cues):
            parts.append(min(1.0, float(ramp(np.array(wmean("motion_energy")), still_level, 3.0)) + 0.3 * smiling))
            weights.append(mean_v)
        if weights and sum(weights) > 0:
            value = sum(p * w for p, w in zip(parts, weights, strict=True)) / sum(weights)
            out["energy"] = {"value": round(100 * value, 1), "weight": round(max(weights), 4)}

        def count(*names: str) -> int:
            return sum(1 for c in cues if c["cue"] in names)

        mean_w = float(ev_w.mean()) if ev_w is not None and ev_w.size else 0.0
        if face_s > 1.0 or count("affirmation", "negation") > 0:
            nods = sum(c["value"] for c in cues if c["cue"] == "head_nod")
            shakes = sum(c["value"] for c in cues if c["cue"] == "head_shake")
            pos = min(1.0, min(1.0, nods / 4.0) * 0.6 + min(1.0, count("affirmation") / 2.0) * 0.4 + 0.3 * smiling)
            neg = min(1.0, shakes / 4.0) * 0.6 + min(1.0, count("negation", "strain_word") / 2.0) * 0.4
            value = 50 + 40 * pos - 30 * neg + 10 * min(1.0, face_s / 8.0)
            weight = max(min(1.0, face_s / 8.0) * mean_v, mean_w if count("affirmation", "negation") else 0.0)
            out["rapport"] = {"value": round(float(np.clip(value, 0, 100)), 1), "weight": round(weight, 4)}
        learning = learning_cqi(cues, mean_w, mean_v)  # leaning in is added by the sequencer
        if learning is not None:
            out["learning"] = learning
        return out
