"""Per-frame face measurements with a per-session cache: MTCNN (Torch) or OpenCV Haar.

Two trackers fill the same per-frame record (:class:`FaceFrame`), chosen by
:func:`make_tracker` (``INTER1SRV_FACE=haar|mtcnn|auto``):

- :class:`MtcnnTracker`: the MTCNN networks of :mod:`workers.mtcnn` (Torch, weights
  from the ``facenet-pytorch`` wheel), batched over every window and session of a
  worker batch on the worker's device (CUDA when present). Its five landmarks add
  the head roll (``head_tilt``) and a yaw test for ``turned``.
- :class:`FaceTracker`: ``opencv-python-headless`` 4.x ships the Haar cascades inside
  its wheel; a frontal-face detection plus normalised-cross-correlation tracking
  costs a few milliseconds per frame on one CPU core, but it has no landmarks and
  loses faces tilted by more than ~15 degrees (they become ``turned``).

The rest of this docstring describes the Haar tracker; the MTCNN one keeps the
same cache design (see its docstring).

Per frame (320x240 RGB at the analysis rate) the tracker records:

- ``state``: ``"frontal"`` (a frontal face was detected or tracked),
  ``"turned"`` (no frontal face, but a face-sized skin-coloured region remains
  where the face was: the head turned away), ``"absent"`` (neither), or
  ``"unknown"`` (not measured);
- ``cx``, ``cy``, ``size``: face centre and side in pixels (frontal only);
- ``faces``: how many frontal faces the last detection saw (participant 0 is
  the largest; the others are only counted).

Cost control: a full-frame detection (at half resolution) runs only while no
face is known, at most every ``FULL_EVERY`` frames; once a face is known, a
detection restricted to a region around it runs every ``DETECT_EVERY`` frames
and template matching (TM_CCOEFF_NORMED, sub-pixel peak) tracks the face on
the frames in between.

Overlapping windows: windows of a session overlap (8 s every 3 s), so the
records are cached per session and frame time (:class:`FaceCache`); a window
only computes the frames no earlier window computed on this worker, and
tracking continues from the cached state of the previous frame.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from workers.session_cache import SessionCache, drop_keys_before
from workers.session_cache import time_key as _key
from workers.signal_shapes import reversal_hz
from workers.signal_shapes import runs as _runs

if TYPE_CHECKING:
    from workers.expression import SmileMeter
    from workers.mtcnn import Faces

# Cost knobs and detector internals (not operator settings: they trade CPU for tracking quality
# and fix the cache's chain structure; the behavioural thresholds are FaceSettings below)
DETECT_EVERY = 3  # ROI detection cadence while a face is tracked (frames)
FULL_EVERY = 5  # full-frame detection cadence while no face is known (frames)
TRACK_MIN_SCORE = 0.55  # Haar template tracking: correlation needed to follow the face
MIN_FACE = 24
MAX_GAP_S = 0.5  # a cached previous frame further back than this does not seed tracking
CACHE_SESSIONS = 64
CACHE_SECONDS = 45.0
STATE_SECONDS = 2.0
SIZE_STEP_S = 0.5  # face_size measurements: frontal runs cut into pieces of about this


@dataclass(frozen=True)
class FaceSettings:
    """Face-cue thresholds: the ``face`` section of :class:`workers.thresholds.ModelSettings`.

    The trackers use the ``turned`` / ``absent`` tests (a tracker's records are cached per
    session, so one tracker keeps one settings object for its life); :func:`face_cues` the rest.
    """

    # turned or absent (the trackers)
    turned_eye_ratio: float = 0.8  # MTCNN: eye distance / eye-to-mouth distance below this = turned (~40 deg yaw)
    skin_turned: float = 0.20  # skin fraction in the last face box that means "head still there" (turned)
    skin_global: float = 0.005  # skin fraction of the whole frame (about 20x20 px) when no face is known
    count_min_score: float = 0.95  # MTCNN: a second face counts in ``faces`` only from this O-net score
    # nod / shake: an oscillation of the face centre within a chunk of ``chunk_s``
    nod_min_amp: float = 0.03  # amplitude as a fraction of face size
    nod_min_hz: float = 1.0
    nod_max_hz: float = 4.5
    osc_axis_ratio: float = 2.0  # RMS along the axis over RMS across it
    chunk_s: float = 2.0  # face_present / nod / shake episodes: frontal runs cut into chunks of about this
    away_min_s: float = 0.5  # look_away and face_absent episodes
    no_face_min_s: float = 1.0  # a no-face range reported in coverage.degraded
    tilt_min_deg: float = 10.0  # head_tilt: |roll| of the eye line (landmarks only)...
    tilt_min_s: float = 1.0  # ...held on one side this long
    # smile: frontal frames whose happy-expression probability (workers.expression) reaches smile_min_prob,
    # gaps of up to smile_max_gap_s bridged, held at least smile_min_s
    smile_min_prob: float = 0.7
    smile_max_gap_s: float = 0.25
    smile_min_s: float = 1.0


DEFAULT_FACE = FaceSettings()


@dataclass
class FaceFrame:
    t: float
    state: str  # frontal | turned | absent | unknown
    cx: float = float("nan")
    cy: float = float("nan")
    size: float = float("nan")
    faces: int = 0
    detected: bool = False  # a detector ran on this frame (else tracked or carried)
    # landmark measurements (MTCNN only; nan with the Haar detector, which has no landmarks)
    roll: float = float("nan")  # degrees: eye line against the horizontal, + = image-right eye lower
    eye_ratio: float = float("nan")  # eye distance over eye-to-mouth distance (~1.1 frontal, falls with yaw)
    nose_offset: float = float("nan")  # nose off the eye midline, in eye distances (+ = image right; not used)
    # happy-expression probability of the tracked (frontal) face (workers.expression; nan: not measured)
    smile: float = float("nan")


@dataclass
class _TrackState:
    t: float
    frame_index: int
    box: tuple[float, float, float] | None  # cx, cy, size of the last frontal face
    template: np.ndarray | None
    last_box: tuple[float, float, float] | None  # last frontal box seen (for the skin test)
    state: str
    faces: int


class FaceCache(SessionCache[dict]):
    """Per-worker cache: session -> frame time (ms) -> FaceFrame, plus the tracker state after it."""

    def __init__(self, max_sessions: int = CACHE_SESSIONS, keep_seconds: float = CACHE_SECONDS) -> None:
        super().__init__(lambda: {"frames": {}, "states": {}}, max_sessions)
        self.keep_seconds = keep_seconds

    def trim(self, sid: str, newest: float) -> None:
        """Drop records older than ``keep_seconds``, and tracker states (which hold a face template)
        older than ``STATE_SECONDS``: chains restart every second, so only a window that starts
        mid-second needs the state of the frame before it."""
        entry = self.session(sid)
        drop_keys_before(entry["frames"], newest - self.keep_seconds)
        drop_keys_before(entry["states"], newest - STATE_SECONDS)


class FaceTracker:
    """The CPU path: OpenCV Haar detection + template tracking (see the module docstring)."""

    kind = "haar"

    def __init__(self, cache: FaceCache | None = None, *, settings: FaceSettings | None = None,
                 smile: SmileMeter | None = None) -> None:
        import cv2

        self._cv2 = cv2
        cv2.setNumThreads(1)  # one worker process per core: OpenCV's own threads only add overhead
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():  # pragma: no cover - broken install
            raise RuntimeError(f"cannot load {path}")
        self.cache = cache or FaceCache()
        self.settings = settings or DEFAULT_FACE
        self.smile = smile

    # ------------------------------------------------------------- detection
    def _detect(self, gray: np.ndarray, box: tuple[float, float, float] | None) -> list[tuple[float, float, float]]:
        cv2 = self._cv2
        h, w = gray.shape
        if box is None:  # full frame at half resolution
            small = cv2.resize(gray, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            found = self._cascade.detectMultiScale(small, 1.15, 3, minSize=(MIN_FACE // 2 + 6, MIN_FACE // 2 + 6))
            return sorted(((x * 2 + s, y * 2 + s, s * 2.0) for x, y, s, _ in found), key=lambda b: -b[2])
        cx, cy, size = box
        half = size * 1.1
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
        roi = gray[y0:y1, x0:x1]
        lo = max(MIN_FACE, int(size * 0.7))
        hi = int(size * 1.45)
        if roi.shape[0] < lo or roi.shape[1] < lo:
            return []
        found = self._cascade.detectMultiScale(roi, 1.1, 3, minSize=(lo, lo), maxSize=(hi, hi))
        return sorted(((x0 + x + s / 2, y0 + y + s / 2, float(s)) for x, y, s, _ in found), key=lambda b: -b[2])

    def _count_faces(self, gray: np.ndarray) -> int:
        return len(self._detect(gray, None))

    @staticmethod
    def _skin_fraction(rgb: np.ndarray, box: tuple[float, float, float]) -> float:
        cx, cy, size = box
        h, w = rgb.shape[:2]
        x0, y0 = int(max(0, cx - size / 2)), int(max(0, cy - size / 2))
        x1, y1 = int(min(w, cx + size / 2)), int(min(h, cy + size / 2))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return 0.0
        patch = rgb[y0:y1:2, x0:x1:2].astype(np.float32)
        r, g, b = patch[..., 0], patch[..., 1], patch[..., 2]
        y = 0.299 * r + 0.587 * g + 0.114 * b
        cr = (r - y) * 0.713 + 128
        cb = (b - y) * 0.564 + 128
        skin = (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127) & (y > 40)
        return float(skin.mean())

    def _template(self, gray: np.ndarray, box: tuple[float, float, float]) -> np.ndarray | None:
        cx, cy, size = box
        s = size * 0.8
        x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
        x1, y1 = x0 + int(s), y0 + int(s)
        if x0 < 0 or y0 < 0 or x1 > gray.shape[1] or y1 > gray.shape[0]:
            return None
        return gray[y0:y1, x0:x1].copy()

    def _track(self, gray: np.ndarray, box: tuple[float, float, float], tpl: np.ndarray):
        cv2 = self._cv2
        cx, cy, size = box
        th, tw = tpl.shape
        margin = max(8, int(size * 0.25))
        x0 = int(round(cx - tw / 2)) - margin
        y0 = int(round(cy - th / 2)) - margin
        x0c, y0c = max(0, x0), max(0, y0)
        x1c = min(gray.shape[1], x0 + tw + 2 * margin)
        y1c = min(gray.shape[0], y0 + th + 2 * margin)
        region = gray[y0c:y1c, x0c:x1c]
        if region.shape[0] < th + 2 or region.shape[1] < tw + 2:
            return None, 0.0
        res = cv2.matchTemplate(region, tpl, cv2.TM_CCOEFF_NORMED)
        _, score, _, (px, py) = cv2.minMaxLoc(res)
        dx = dy = 0.0
        if 0 < px < res.shape[1] - 1:
            a, b, c = res[py, px - 1], res[py, px], res[py, px + 1]
            den = a - 2 * b + c
            dx = 0.5 * (a - c) / den if abs(den) > 1e-9 else 0.0
        if 0 < py < res.shape[0] - 1:
            a, b, c = res[py - 1, px], res[py, px], res[py + 1, px]
            den = a - 2 * b + c
            dy = 0.5 * (a - c) / den if abs(den) > 1e-9 else 0.0
        ncx = x0c + px + dx + tw / 2
        ncy = y0c + py + dy + th / 2
        return (float(ncx), float(ncy), size), float(score)

    # ------------------------------------------------------------- per frame
    def _step(self, rgb: np.ndarray, t: float, prev: _TrackState | None, index: int) -> tuple[FaceFrame, _TrackState]:
        cv2 = self._cv2
        gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)

        box = prev.box if prev is not None else None
        last_box = prev.last_box if prev is not None else None
        faces = prev.faces if prev is not None else 0
        template = prev.template if prev is not None else None
        detected = False
        state = "absent"
        if prev is None or box is None:
            # no face known: a full-frame search now and then, otherwise carry the previous state
            if prev is None or prev.state == "unknown" or index % FULL_EVERY == 0:
                found = self._detect(gray, None)
                detected = True
                faces = len(found)
                if found:
                    box, state = found[0], "frontal"
                    template = self._template(gray, box)
                    last_box = box
                else:
                    state = self._turned_or_absent(rgb, last_box)
            else:
                state = prev.state
        else:
            new_box = None
            if index % DETECT_EVERY == 0:
                found = self._detect(gray, box)
                detected = True
                if found:
                    new_box = found[0]
                    template = self._template(gray, new_box)
            if new_box is None and template is not None:
                tracked, score = self._track(gray, box, template)
                if tracked is not None and score >= TRACK_MIN_SCORE and not detected:
                    new_box = tracked
                elif tracked is not None and detected and score >= 0.8:
                    new_box = tracked  # detector missed one frame; the face is clearly still there
            if new_box is not None:
                box, state, last_box = new_box, "frontal", new_box
            else:
                box, template = None, None
                state = self._turned_or_absent(rgb, last_box)
                faces = 0
        rec = FaceFrame(t=float(t), state=state, faces=faces if state == "frontal" else 0, detected=detected)
        if state == "frontal" and box is not None:
            rec.cx, rec.cy, rec.size = box
        return rec, _TrackState(float(t), index, box, template, last_box, state, faces)

    def _turned_or_absent(self, rgb: np.ndarray, last_box: tuple[float, float, float] | None) -> str:
        return _turned_or_absent(rgb, last_box, self.settings)

    def frames_batch(self, items: list[tuple[str, np.ndarray, np.ndarray]]) -> list[list[FaceFrame]]:
        """:meth:`frames` for each (session id, frames, times) of a batch, in order."""
        return [self.frames(sid, f, t) for sid, f, t in items]

    def frames(self, session_id: str, frames: np.ndarray, times: np.ndarray) -> list[FaceFrame]:
        """Face records for each frame, computing only those not cached for this session.

        Tracking chains restart at every whole media second (a full detection on its first
        frame), so a frame's record depends only on the frames of its own second: the cache
        is a pure memo, and a window gets the same records whichever worker computed them
        before (or none did). A chain that cannot start at its second's first frame (a window
        starting mid-second, a gap) is computed from what the window has and not cached.
        """
        entry = self.cache.session(session_id)
        cached, states = entry["frames"], entry["states"]
        out: list[FaceFrame] = []
        computed: list[tuple[np.ndarray, FaceFrame]] = []
        dt = float(np.median(np.diff(times))) if times.size > 1 else 0.1
        prev: _TrackState | None = None
        sec: int | None = None
        anchored = chain_ok = False
        for i in range(frames.shape[0]):
            t = float(times[i])
            k = _key(t)
            s_i = int(math.floor(t + 1e-6))
            if s_i != sec or (prev is not None and t - prev.t > MAX_GAP_S):
                anchored = s_i != sec and (t - s_i) < 0.75 * dt
                sec, prev = s_i, None
                chain_ok = anchored  # the chain so far is the anchored one (its results may be cached)
            rec = cached.get(k) if anchored else None
            if rec is not None:
                self.cache.hits += 1
                if _unmeasured(rec, self.smile):  # cached by a call that failed before measuring it
                    computed.append((frames[i], rec))
                prev = states.get(k)
                if prev is None:  # state trimmed: an uncached frame after it would start a new chain
                    chain_ok = False
                out.append(rec)
                continue
            self.cache.misses += 1
            index = prev.frame_index + 1 if prev is not None else 0
            rec, st = self._step(frames[i], t, prev, index)
            computed.append((frames[i], rec))
            if anchored and chain_ok:
                cached[k], states[k] = rec, st
            prev = st
            out.append(rec)
        if self.smile is not None:
            self.smile.measure(computed)
        if times.size:
            self.cache.trim(session_id, float(times[-1]))
        return out


def _unmeasured(rec: FaceFrame, meter: SmileMeter | None) -> bool:
    """A cached frontal record without its smile measurement (the call that cached it raised before
    measuring: a retried window measures it then)."""
    return meter is not None and rec.state == "frontal" and math.isnan(rec.smile)


def _turned_or_absent(rgb: np.ndarray, last_box: tuple[float, float, float] | None, cfg: FaceSettings) -> str:
    """No face found: "turned" if a face-sized skin region remains (where the face was), else "absent"."""
    if last_box is None:  # chain start: any face-sized skin region in the frame
        h, w = rgb.shape[:2]
        skin = FaceTracker._skin_fraction(rgb[::2, ::2], (w / 4, h / 4, max(h, w) / 2))
        return "turned" if skin >= cfg.skin_global else "absent"
    cx, cy, size = last_box
    grown = (cx, cy, size * 1.3)
    return "turned" if FaceTracker._skin_fraction(rgb, grown) >= cfg.skin_turned else "absent"


# ---------------------------------------------------------------- MTCNN path
FACE_PER_EYE_MOUTH = 2.9  # MTCNN face box height over the eye-to-mouth distance (frontal faces; a calibration)


@dataclass
class _MtcnnState:
    t: float
    frame_index: int
    box: np.ndarray | None  # (4,) pixel edges of the face followed (frontal or turned)
    last_box: tuple[float, float, float] | None  # cx, cy, size of the last face seen (for the skin test)
    state: str
    faces: int


def landmark_measures(marks: np.ndarray) -> dict[str, float]:
    """Roll, eye ratio, nose offset, centre and face size from the five MTCNN landmarks."""
    le, re_, nose, ml, mr = (marks[i].astype(np.float64) for i in range(5))
    eyes, mouth = (le + re_) / 2, (ml + mr) / 2
    d_eye = float(np.hypot(*(re_ - le)))
    d_em = float(np.hypot(*(mouth - eyes)))
    axis = (re_ - le) / max(d_eye, 1e-6)
    centre = marks.astype(np.float64).mean(axis=0)
    return {"roll": math.degrees(math.atan2(re_[1] - le[1], re_[0] - le[0])),
            "eye_ratio": d_eye / max(d_em, 1e-6),
            "nose_offset": float(np.dot(nose - eyes, axis)) / max(d_eye, 1e-6),
            "cx": float(centre[0]), "cy": float(centre[1]), "size": FACE_PER_EYE_MOUTH * d_em}


class MtcnnTracker:
    """Per-frame face records from MTCNN (:mod:`workers.mtcnn`), batched over every window of a batch.

    The same records and cache as :class:`FaceTracker`: chains restart at every whole media
    second with a full three-stage detection on its first frame; the following frames of the
    second follow the face with the O-net alone on the square around the previous frame's face
    (a full detection again when the O-net loses it, and every ``FULL_EVERY`` frames while no
    face is known). All chains of a batch advance in lockstep, so each step is one detection
    call and one O-net call for every window and session of the batch, on the worker's device.

    Landmarks give the position (their centroid), the face size (``FACE_PER_EYE_MOUTH`` x the
    eye-to-mouth distance, steadier than the box), the roll from the eye line, and the yaw
    sign used for ``turned``: the eyes foreshortened against the eye-to-mouth distance
    (``eye_ratio`` < ``FaceSettings.turned_eye_ratio``), which the corpus's look-away exercises. The nose's
    offset from the eye midline is recorded (``nose_offset``) but not used: a flat photo cannot
    script it, so it is not evaluated. No face at all: the skin test of :class:`FaceTracker`.
    """

    kind = "mtcnn"

    def __init__(self, device: str = "cpu", cache: FaceCache | None = None, *, min_face: int | None = None,
                 settings: FaceSettings | None = None, smile: SmileMeter | None = None) -> None:
        from workers.mtcnn import MIN_FACE as MTCNN_MIN_FACE
        from workers.mtcnn import Mtcnn

        self.net = Mtcnn(device, min_face=min_face or MTCNN_MIN_FACE)
        self.cache = cache or FaceCache()
        self.settings = settings or DEFAULT_FACE
        self.smile = smile
        if self.net.device.type == "cuda":
            self.net.warm_up()

    def frames(self, session_id: str, frames: np.ndarray, times: np.ndarray) -> list[FaceFrame]:
        """Face records of one window (see :meth:`frames_batch`)."""
        return self.frames_batch([(session_id, frames, times)])[0]

    def _record(self, rgb: np.ndarray, t: float, prev: _MtcnnState | None, index: int, found: Faces,
                full: bool) -> tuple[FaceFrame, _MtcnnState]:
        """The record of one frame from what the detector (``full``) or the O-net tracker found."""
        cfg = self.settings
        faces = prev.faces if prev is not None else 0
        last_box = prev.last_box if prev is not None else None
        if full:  # faces counted: the largest plus any other confident detection
            faces = min(len(found.boxes), 1 + int((found.scores[1:] >= cfg.count_min_score).sum()))
        if len(found.boxes):
            m = landmark_measures(found.landmarks[0])
            turned = m["eye_ratio"] < cfg.turned_eye_ratio
            state = "turned" if turned else "frontal"
            rec = FaceFrame(t=t, state=state, faces=faces if state == "frontal" else 0, detected=full,
                            roll=m["roll"], eye_ratio=m["eye_ratio"], nose_offset=m["nose_offset"])
            if state == "frontal":
                rec.cx, rec.cy, rec.size = m["cx"], m["cy"], m["size"]
            last_box = (m["cx"], m["cy"], m["size"])
            return rec, _MtcnnState(t, index, found.boxes[0].copy(), last_box, state, faces)
        state = _turned_or_absent(rgb, last_box, cfg)
        return FaceFrame(t=t, state=state, detected=full), _MtcnnState(t, index, None, last_box, state, 0)

    def frames_batch(self, items: list[tuple[str, np.ndarray, np.ndarray]]) -> list[list[FaceFrame]]:
        """Face records for each (session id, frames, times) of a batch, computing only the frames
        no earlier window cached; a chain shared by two windows of the batch is computed once."""
        out: list[list[FaceFrame | None]] = []
        runs: list[dict] = []  # uncached frames of one chain in one window, with the state before them
        unmeasured: list[tuple[np.ndarray, FaceFrame]] = []  # cached by a call that failed before measuring
        for n, (sid, frames, times) in enumerate(items):
            entry = self.cache.session(sid)
            cached, states = entry["frames"], entry["states"]
            recs: list[FaceFrame | None] = [None] * frames.shape[0]
            out.append(recs)
            dt = float(np.median(np.diff(times))) if times.size > 1 else 0.1
            sec: int | None = None
            prev_t = -1e9
            seed: _MtcnnState | None = None
            run: dict | None = None
            anchored = chain_ok = False
            for i in range(frames.shape[0]):
                t = float(times[i])
                k = _key(t)
                s_i = int(math.floor(t + 1e-6))
                if s_i != sec or t - prev_t > MAX_GAP_S:
                    anchored = s_i != sec and (t - s_i) < 0.75 * dt
                    sec, seed, run, chain_ok = s_i, None, None, anchored
                prev_t = t
                if run is None:
                    rec = cached.get(k) if anchored else None
                    if rec is not None:
                        self.cache.hits += 1
                        recs[i] = rec
                        if _unmeasured(rec, self.smile):
                            unmeasured.append((frames[i], rec))
                        seed = states.get(k)
                        chain_ok = chain_ok and seed is not None
                        continue
                    run = {"item": n, "sid": sid, "frames": [], "keys": [], "seed": seed,
                           "cache": anchored and chain_ok,
                           "sig": (sid, k, None if seed is None else _key(seed.t), anchored and chain_ok)}
                    runs.append(run)
                run["frames"].append(i)
                run["keys"].append(k)
        # windows of one session in the same batch share chains: the longest run of each computes it
        masters: dict[tuple, dict] = {}
        for run in runs:
            best = masters.get(run["sig"])
            if best is None or len(run["frames"]) > len(best["frames"]):
                masters[run["sig"]] = run
        self._run(items, list(masters.values()))
        if unmeasured and self.smile is not None:
            self.smile.measure(unmeasured)
        for run in runs:
            results = masters[run["sig"]]["results"]
            for i, k in zip(run["frames"], run["keys"], strict=True):
                rec = results.get(k)
                if rec is None:  # pragma: no cover - twin windows with different frames at one time
                    rec = self._alone(items[run["item"]], i)
                out[run["item"]][i] = rec
        for sid, _, times in items:
            if times.size:
                self.cache.trim(sid, float(times[-1]))
        return [[r for r in recs if r is not None] for recs in out]

    def _alone(self, item: tuple[str, np.ndarray, np.ndarray], i: int) -> FaceFrame:
        sid, frames, times = item
        job = {"item": 0, "sid": sid, "frames": [0], "keys": [_key(float(times[i]))], "seed": None, "cache": False}
        self._run([(sid, frames[i:i + 1], times[i:i + 1])], [job])
        return next(iter(job["results"].values()))

    def _run(self, items: list[tuple[str, np.ndarray, np.ndarray]], jobs: list[dict]) -> None:
        """Advance every job (a run of frames of one chain) in lockstep: one detect and one track call per step."""
        for job in jobs:
            job["results"], job["state"] = {}, job["seed"]
        computed: list[tuple[np.ndarray, FaceFrame]] = []
        step = 0
        while True:
            live = [j for j in jobs if step < len(j["frames"])]
            if not live:
                break
            detect, track, carry = [], [], []
            for j in live:
                st: _MtcnnState | None = j["state"]
                if st is None or st.state == "unknown":
                    detect.append(j)
                elif st.box is not None:
                    track.append(j)
                elif (st.frame_index + 1) % FULL_EVERY == 0:
                    detect.append(j)
                else:
                    carry.append(j)

            def rgb(j: dict, step: int = step) -> np.ndarray:
                return items[j["item"]][1][j["frames"][step]]

            found: dict[int, tuple] = {}
            if track:
                res = self.net.track(np.stack([rgb(j) for j in track]), np.stack([j["state"].box for j in track]))
                for j, r in zip(track, res, strict=True):
                    if len(r.boxes):
                        found[id(j)] = (r, False)
                    else:
                        detect.append(j)  # lost: look for it (and any face) in the whole frame
            if detect:
                res = self.net.detect(np.stack([rgb(j) for j in detect]))
                for j, r in zip(detect, res, strict=True):
                    found[id(j)] = (r, True)
            for j in live:
                i = j["frames"][step]
                t = float(items[j["item"]][2][i])
                st = j["state"]
                index = st.frame_index + 1 if st is not None else 0
                if id(j) in found:
                    r, full = found[id(j)]
                    rec, new = self._record(rgb(j), t, st, index, r, full)
                else:  # no face known and not a detection frame: carry the previous state
                    rec = FaceFrame(t=t, state=st.state)
                    new = _MtcnnState(t, index, None, st.last_box, st.state, 0)
                self.cache.misses += 1
                computed.append((rgb(j), rec))
                j["results"][j["keys"][step]] = rec
                j["state"] = new
                if j["cache"]:
                    entry = self.cache.session(j["sid"])
                    entry["frames"][j["keys"][step]], entry["states"][j["keys"][step]] = rec, new
            step += 1
        if self.smile is not None:  # every new frontal face of the batch in one call, on the worker's device
            self.smile.measure(computed)


FACE_ENV = "INTER1SRV_FACE"
# auto on a CPU worker: MTCNN, measured on the corpus (README, "The model"): the same table as Haar on
# nods, shakes, look-away, absence and lean, and head tilts that Haar turns into false look-aways,
# for ~0.01 more CPU s per media s
CPU_DEFAULT = "mtcnn"
log = logging.getLogger("inter1srv.worker")


def make_tracker(kind: str | None = None, device: str = "cpu", cache: FaceCache | None = None, *,
                 settings: FaceSettings | None = None, smile: bool = True) -> FaceTracker | MtcnnTracker:
    """The face tracker ``kind`` names (default ``$INTER1SRV_FACE``, else ``auto``): ``haar``,
    ``mtcnn``, or ``auto`` (MTCNN on CUDA, ``CPU_DEFAULT`` on the CPU), with the ``face`` settings
    (default: :class:`FaceSettings`). MTCNN without its weights falls back to Haar and logs why.
    With ``smile`` the tracked face's expression is measured too (:mod:`workers.expression`; without
    its weights it is not, and that is logged)."""
    name = (kind or os.environ.get(FACE_ENV) or "auto").strip().lower()
    if name not in ("auto", "haar", "mtcnn"):
        raise ValueError(f"{FACE_ENV}={name!r}: expected haar, mtcnn or auto")
    if name == "auto":
        name = "mtcnn" if str(device).startswith("cuda") else CPU_DEFAULT
    meter = None
    if smile:
        from workers.expression import make_smile_meter

        meter = make_smile_meter(device)
    if name == "mtcnn":
        from workers.mtcnn import WeightsMissing

        try:
            return MtcnnTracker(device, cache, settings=settings, smile=meter)
        except WeightsMissing as exc:
            log.warning("MTCNN face detector unavailable (%s); falling back to the OpenCV Haar detector", exc)
    return FaceTracker(cache, settings=settings, smile=meter)


# ---------------------------------------------------------------------- cues (thresholds: FaceSettings)
def _oscillation(pos: np.ndarray, other: np.ndarray, size: float, seconds: float,
                 cfg: FaceSettings) -> tuple[int, float, float] | None:
    """(count, hz, amplitude as a fraction of face size) of an oscillation along ``pos``, or None."""
    if pos.size < 8 or seconds <= 0:
        return None
    k = np.arange(pos.size)
    p = pos - np.polyval(np.polyfit(k, pos, 1), k)
    o = other - np.polyval(np.polyfit(k, other, 1), k)
    rp, ro = float(np.sqrt(np.mean(p**2))), float(np.sqrt(np.mean(o**2)))
    amp = rp * math.sqrt(2.0) / max(size, 1.0)
    if amp < cfg.nod_min_amp or rp < cfg.osc_axis_ratio * ro:
        return None
    hz = reversal_hz(p, rp, seconds)
    if hz is None or not cfg.nod_min_hz <= hz <= cfg.nod_max_hz:
        return None
    return max(1, int(round(hz * seconds))), hz, amp


def _smile_cues(recs: list[FaceFrame], t: np.ndarray, *, span_of, step: int, cfg: FaceSettings) -> list[dict]:
    """``smile`` cues of one run of frontal frames: frames whose happy probability reaches
    ``smile_min_prob`` (gaps up to ``smile_max_gap_s`` bridged, unmeasured frames break a run), held
    ``smile_min_s``, cut into chunks of about ``step`` frames; value = median probability of the chunk."""
    p = np.array([r.smile for r in recs], dtype=np.float64)
    if not np.isfinite(p).any():
        return []  # not measured (no expression weights): no smile cue, never a guess
    measured = np.isfinite(p)
    on = measured & (np.nan_to_num(p, nan=-1.0) >= cfg.smile_min_prob)
    dt = float(np.median(np.diff(t))) if t.size > 1 else 0.1
    for a, b in _runs(~on & measured):  # bridge short dips between two smiling frames
        if 0 < a and b < on.size and on[a - 1] and on[b] and t[b - 1] - t[a] + dt <= cfg.smile_max_gap_s + 1e-6:
            on[a:b] = True
    out = []
    for a, b in _runs(on):
        s, e = span_of(a, b)
        if e - s < cfg.smile_min_s - 1e-6:
            continue
        chunks = max(1, int(round((b - a) / step)))
        edges = np.linspace(a, b, chunks + 1).round().astype(int)
        for c0, c1 in zip(edges[:-1], edges[1:], strict=True):
            if c1 > c0:
                cs, ce = span_of(c0, c1)
                vals = p[c0:c1][np.isfinite(p[c0:c1])]
                out.append({"modality": "nonverbal", "cue": "smile", "value": round(float(np.median(vals)), 3),
                            "start": round(float(cs), 3), "end": round(float(ce), 3), "participant": 0})
    return out


def face_cues(recs: list[FaceFrame], start: float, end: float, hold: float = 0.05, *,
              cfg: FaceSettings = DEFAULT_FACE) -> tuple[list[dict], list[tuple[float, float]]]:
    """Nonverbal face cues of one window, and the ranges with video but no frontal face.

    Thresholds come from ``cfg`` (the model passes its ``face`` settings; the field names
    below are :class:`FaceSettings` fields).

    Cue values: ``face_present`` faces in frame (participant 0 is tracked);
    ``head_nod`` / ``head_shake`` nods (cycles) in the episode, with ``rate_hz`` and
    ``amplitude`` (fraction of the face size); ``look_away`` and ``face_absent``
    seconds; ``head_tilt`` the median
    roll in degrees (signed, + = the image-right eye lower) of a run of at least ``tilt_min_s`` with
    ``|roll| >= tilt_min_deg`` on the same side (only where landmarks measured the roll: MTCNN).

    ``smile`` the median happy-expression probability (:mod:`workers.expression`) of a run of frontal
    frames at or above ``smile_min_prob`` held ``smile_min_s`` (chunks of about ``chunk_s``); only where
    the expression was measured.

    ``face_size`` (about every ``SIZE_STEP_S``) is the median height of the tracked face in pixels
    of the analysis frame: a measurement, not a behaviour. Leaning in or back is a change of it
    against the session's usual size, which one window cannot know (windows are analysed by any
    worker, in any order): :mod:`workers.session_baseline` turns these into ``lean_in`` /
    ``lean_back`` in the sequencer, against the committed part of the session.
    """
    if not recs:
        return [], []
    t = np.array([r.t for r in recs])
    dt = np.median(np.diff(t)) if t.size > 1 else 0.1
    half = min(0.25, float(dt) / 2 + hold)

    def span(i: int, j: int) -> tuple[float, float]:
        return max(start, t[i] - half), min(end, t[j - 1] + half)

    def cue(name: str, value: float, s: float, e: float, **extra) -> dict:
        c = {"modality": "nonverbal", "cue": name, "value": round(float(value), 3),
             "start": round(float(s), 3), "end": round(float(e), 3)}
        c.update({k: round(float(v), 3) for k, v in extra.items()})
        if name != "face_absent":
            c["participant"] = 0  # the largest face is tracked; others are only counted (face_present)
        return c

    cues: list[dict] = []
    state = np.array([r.state for r in recs])
    gap_after = np.concatenate([np.diff(t) > MAX_GAP_S, [False]])  # a run never spans a video gap

    def _split(mask: np.ndarray) -> list[tuple[int, int]]:
        out = []
        for i, j in _runs(mask):
            cuts = [i] + [k + 1 for k in range(i, j - 1) if gap_after[k]] + [j]
            out += [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
        return out

    frontal = state == "frontal"
    no_face: list[tuple[float, float]] = []
    for i, j in _split(~frontal):
        s, e = span(i, j)
        if e - s >= cfg.no_face_min_s - 1e-6:
            no_face.append((s, e))
    for name, st, min_s in (("look_away", "turned", cfg.away_min_s), ("face_absent", "absent", cfg.away_min_s)):
        for i, j in _split(state == st):
            s, e = span(i, j)
            if e - s >= min_s - 1e-6:
                cues.append(cue(name, e - s, s, e))
    cx = np.array([r.cx for r in recs])
    cy = np.array([r.cy for r in recs])
    size = np.array([r.size for r in recs])
    faces = np.array([r.faces for r in recs])
    roll = np.array([r.roll for r in recs])
    measured = frontal & np.isfinite(roll)
    for mask in (measured & (roll >= cfg.tilt_min_deg), measured & (roll <= -cfg.tilt_min_deg)):
        for i, j in _split(mask):
            s, e = span(i, j)
            if e - s >= cfg.tilt_min_s - 1e-6:
                cues.append(cue("head_tilt", float(np.median(roll[i:j])), s, e))
    step = max(4, int(round(cfg.chunk_s / max(float(dt), 1e-3))))
    for i, j in _split(frontal):
        n = j - i
        chunks = max(1, int(round(n / step)))
        edges = np.linspace(i, j, chunks + 1).round().astype(int)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            if b <= a:
                continue
            s, e = span(a, b)
            cues.append(cue("face_present", max(1, int(faces[a:b].max())), s, e))
            med = float(np.median(size[a:b]))
            seconds = float(t[b - 1] - t[a]) + float(dt)
            nod = _oscillation(cy[a:b], cx[a:b], med, seconds, cfg)
            if nod is not None:
                cues.append(cue("head_nod", nod[0], s, e, rate_hz=nod[1], amplitude=nod[2]))
            shake = _oscillation(cx[a:b], cy[a:b], med, seconds, cfg)
            if shake is not None:
                cues.append(cue("head_shake", shake[0], s, e, rate_hz=shake[1], amplitude=shake[2]))
        cues += _smile_cues(recs[i:j], t[i:j], span_of=lambda a, b, i=i: span(i + a, i + b), step=step, cfg=cfg)
        pieces = max(1, int(round((j - i) * float(dt) / SIZE_STEP_S)))
        edges = np.linspace(i, j, pieces + 1).round().astype(int)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            if b > a:
                cues.append(cue("face_size", float(np.median(size[a:b])), *span(a, b)))
    return cues, no_face
