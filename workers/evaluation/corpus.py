"""A labelled scripted corpus: a real face photo moved by script, real synthesized speech.

The face is the astronaut photo bundled with scikit-image (``skimage.data.astronaut()``,
public domain, NASA), pasted over a plain background and moved per segment: still,
nod (vertical oscillation), shake (horizontal), look-away (simulated yaw: the face
squeezed horizontally to 45 % and shifted), lean in / back (scaled up / down), head tilt
(the face image rotated by ``TILT_DEG``), absent. The photo smiles, so every frame with the
face in view is labelled ``smile`` (the corpus cannot test that a face that does not smile is
left alone: :mod:`workers.evaluation.expressions` does, on real recordings).
Speech is synthesized by ``espeak-ng`` (Debian package ``espeak-ng``) phrase by
phrase, so every phrase's time is known, with scripted hedges, filled pauses (held
flat vowels, ``FILLED_PAUSE``), affirmations, negations, questions, pauses, and fast / loud / high-pitched parts.
The clip is encoded as WebM (VP8 + Opus, by libvpx / libopus through PyAV) and
decoded back at the analysis rate, exactly like the server's media path.

Labels: ``cues`` (what is really in the clip, with times) and ``signals`` (the
signals each segment is scripted to show).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from workers.lexicon import phrase_category

FPS = 10
WIDTH, HEIGHT = 320, 240
SR = 48_000
ESPEAK = "espeak-ng"
# "~uh" in a script: a filled pause as people make one, a held vowel on a flat pitch (SSML prosody);
# espeak-ng says a bare "Um," as a short word with sentence intonation, which no listener hears as a filler
FILLED_PAUSE = "<speak><prosody rate='x-slow' range='x-low'>{}</prosody></speak>"
TILT_DEG = 20.0  # scripted head tilt (roll), clockwise as seen


@dataclass(frozen=True)
class Seg:
    name: str
    seconds: float
    head: str  # still | nod | shake | look_away | lean_in | lean_back | tilt | absent
    items: tuple = ()  # str (a phrase) or float (a pause in seconds)
    signals: tuple[str, ...] = ()
    speed: int = 160  # espeak words per minute
    pitch: int = 50  # espeak 0-99
    amplitude: int = 100  # espeak 0-200
    tags: tuple[str, ...] = ()  # audio labels: loud, high_pitch, fast


SCRIPT: tuple[Seg, ...] = (
    Seg("neutral", 6, "still", ("Let me walk you through the plan for the next quarter.",)),
    Seg("agree", 7, "nod", ("Yes.", 0.3, "Exactly.", 0.3, "I agree with that."), ("agreement",)),
    Seg("disagree", 7, "shake", ("No.", 0.3, "I don't think that will work.", 0.3, "Actually, it failed last time."),
        ("disagreement",)),
    Seg("hesitate", 10, "still", ("~um", 1.0, "maybe", 0.9, "I think we could,", 0.6, "~uh", 0.6, "sort of,", 0.8,
                                  "try it."),
        ("hesitation", "uncertainty"), speed=125),
    Seg("look_away", 7, "look_away", (), ("disengagement",)),
    Seg("absent", 6, "absent", (), ("disengagement",)),
    Seg("stress", 7, "still", ("We are under so much pressure,", "I am worried about the deadline."), ("stress",),
        speed=215, pitch=85, amplitude=180, tags=("loud", "high_pitch", "fast")),
    Seg("confident", 7, "still", ("I definitely know this works.", 0.3, "Clearly, it is the best option."),
        ("confidence",), amplitude=170, tags=("loud",)),
    Seg("interest", 7, "lean_in", ("Tell me more.", 0.3, "That is interesting.", 0.3, "How does it work?"),
        ("interest",)),
    Seg("confused", 7, "tilt", ("What do you mean?", 0.8, "I don't understand."), ("confusion",)),
    Seg("skeptic", 7, "lean_back", ("Really?", 0.6, "Are you sure about that?"), ("skepticism",)),
    Seg("frustrated", 7, "still", ("This is so frustrating.", 0.4, "It broke again."), ("frustration",),
        amplitude=180, tags=("loud",)),
)


@dataclass
class Corpus:
    segments: list[tuple[Seg, float, float]]  # (segment, start, end)
    audio: np.ndarray  # 48 kHz mono float32
    duration: float
    cues: list[dict] = field(default_factory=list)  # {"kind", "start", "end", "text"?}
    signals: list[dict] = field(default_factory=list)  # {"signal", "start", "end"}
    webm: bytes = b""


def espeak_available() -> bool:
    return shutil.which(ESPEAK) is not None


def _espeak(text: str, seg: Seg) -> np.ndarray:
    if text.startswith("~"):  # a filled pause: see FILLED_PAUSE
        return espeak_audio(FILLED_PAUSE.format(text[1:]), speed=seg.speed, pitch=seg.pitch,
                            amplitude=seg.amplitude, ssml=True)
    return espeak_audio(text, speed=seg.speed, pitch=seg.pitch, amplitude=seg.amplitude)


def espeak_audio(text: str, *, voice: str = "en-us", speed: int = 160, pitch: int = 50, amplitude: int = 100,
                 ssml: bool = False, rate: int = SR) -> np.ndarray:
    """espeak-ng speech of ``text`` (SSML when ``ssml``), trimmed to its sound, float32 at ``rate`` Hz."""
    out = subprocess.run([ESPEAK, *(["-m"] if ssml else []), "-v", voice, "-s", str(speed), "-p", str(pitch),
                          "-a", str(amplitude), "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(out)) as w:
        sr = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(x) > 0.01)
    if loud.size:
        x = x[max(0, loud[0] - int(0.01 * sr)): loud[-1] + int(0.02 * sr)]
    n_out = int(round(x.size * rate / sr))
    return np.interp(np.arange(n_out) * (sr / rate), np.arange(x.size), x).astype(np.float32)


def _phrase_labels(text: str, start: float, end: float) -> list[dict]:
    """Lexicon phrases inside ``text``, labelled over the phrase's time (1 s resolution is the goal)."""
    words = "".join(ch if ch.isalnum() or ch in "' " else " " for ch in text.lower()).split()
    joined = " " + " ".join(words) + " "
    out = []
    for phrase, cat in phrase_category().items():
        if f" {phrase} " in joined:
            out.append({"kind": cat, "start": round(start, 3), "end": round(end, 3), "text": phrase})
    return out


def build(script: tuple[Seg, ...] = SCRIPT, *, seed: int = 3) -> Corpus:
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray] = []
    segments: list[tuple[Seg, float, float]] = []
    cues: list[dict] = []
    signals: list[dict] = []
    t = 0.0
    gap = 0.12
    for seg in script:
        seg_start = t
        cursor = seg_start + 0.5
        audio_parts: list[tuple[float, np.ndarray]] = []
        prev_end = None
        for item in seg.items:
            if isinstance(item, float | int) and not isinstance(item, bool):
                cursor += float(item)
                continue
            x = _espeak(str(item), seg)
            if prev_end is not None and cursor - prev_end < gap:
                cursor = prev_end + gap
            s, e = cursor, cursor + x.size / SR
            audio_parts.append((s, x))
            cues.append({"kind": "speech", "start": round(s, 3), "end": round(e, 3), "text": str(item)})
            cues += _phrase_labels(str(item), s, e)
            if prev_end is not None and s - prev_end >= 0.25:
                cues.append({"kind": "pause", "start": round(prev_end, 3), "end": round(s, 3)})
            for tag in seg.tags:
                cues.append({"kind": tag, "start": round(s, 3), "end": round(e, 3)})
            prev_end = e
            cursor = e
        seg_end = max(seg_start + seg.seconds, cursor + 0.5)
        if not seg.items:
            cues.append({"kind": "silence", "start": round(seg_start, 3), "end": round(seg_end, 3)})
        else:
            first = audio_parts[0][0]
            cues.append({"kind": "silence", "start": round(seg_start, 3), "end": round(first, 3)})
            cues.append({"kind": "silence", "start": round(prev_end, 3), "end": round(seg_end, 3)})
        n = int(round((seg_end - seg_start) * SR))
        buf = np.zeros(n, np.float32)
        for s, x in audio_parts:
            i0 = int(round((s - seg_start) * SR))
            buf[i0:i0 + x.size] += x[: max(0, n - i0)]
        pieces.append(buf)
        head = seg.head
        kind = {"absent": "face_absent", "tilt": "head_tilt"}.get(head, head)
        cues.append({"kind": kind, "start": round(seg_start, 3), "end": round(seg_end, 3)})
        if head not in ("absent", "look_away"):
            cues.append({"kind": "face_present", "start": round(seg_start, 3), "end": round(seg_end, 3)})
            # the astronaut smiles in the photo: wherever the face is in view, a smile is really there
            cues.append({"kind": "smile", "start": round(seg_start, 3), "end": round(seg_end, 3)})
        if head not in ("nod", "shake"):
            cues.append({"kind": "head_still", "start": round(seg_start, 3), "end": round(seg_end, 3)})
        for sig in seg.signals:
            signals.append({"signal": sig, "start": round(seg_start, 3), "end": round(seg_end, 3)})
        segments.append((seg, seg_start, seg_end))
        t = seg_end
    audio = np.concatenate(pieces)
    audio += (rng.standard_normal(audio.size) * 10 ** (-60 / 20)).astype(np.float32)
    corpus = Corpus(segments=segments, audio=np.clip(audio, -1, 1), duration=t, cues=cues, signals=signals)
    corpus.webm = encode(corpus)
    return corpus


# ------------------------------------------------------------------ video
_FACE: dict[str, np.ndarray] = {}


def _face_patch() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's head (RGB) and a soft elliptical alpha mask."""
    if "rgb" not in _FACE:
        from skimage import data

        img = data.astronaut()  # 512x512 RGB, face at about x 177-272, y 66-161
        crop = img[30:200, 150:300].astype(np.float32)  # 170 x 150
        h, w = crop.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        d2 = ((xx - w / 2) / (w * 0.5)) ** 2 + ((yy - h / 2) / (h * 0.5)) ** 2
        alpha = np.clip((1.0 - d2) / 0.15, 0.0, 1.0).astype(np.float32)
        _FACE["rgb"], _FACE["alpha"] = crop, alpha
    return _FACE["rgb"], _FACE["alpha"]


def _background() -> np.ndarray:
    if "bg" not in _FACE:
        yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
        bg = np.empty((HEIGHT, WIDTH, 3), np.float32)
        bg[..., 0] = 70 + 30 * xx / WIDTH
        bg[..., 1] = 85 + 30 * yy / HEIGHT
        bg[..., 2] = 120
        _FACE["bg"] = bg.astype(np.uint8)
    return _FACE["bg"]


def head_pose(seg: Seg, t_in: float, seg_len: float) -> tuple[float, float, float, float, float] | None:
    """(cx, cy, scale, squeeze, roll degrees clockwise) of the head ``t_in`` s into the segment, or None if absent."""
    cx, cy, scale, squeeze, roll = WIDTH / 2, HEIGHT / 2 - 5, 1.0, 1.0, 0.0
    ramp = min(1.0, t_in / 0.5)  # 0.5 s transitions into posture changes
    if seg.head == "absent":
        return None
    if seg.head == "nod":
        cy += 7.0 * np.sin(2 * np.pi * 2.0 * t_in)
    elif seg.head == "shake":
        cx += 10.0 * np.sin(2 * np.pi * 2.2 * t_in)
    elif seg.head == "look_away":
        squeeze = 1.0 - 0.6 * ramp
        cx += 14.0 * ramp
    elif seg.head == "lean_in":
        scale = 1.0 + 0.35 * ramp
    elif seg.head == "lean_back":
        scale = 1.0 - 0.28 * ramp
    elif seg.head == "tilt":  # the face image rotated clockwise (head tilted towards its left shoulder)
        roll = TILT_DEG * ramp
    return cx, cy, scale, squeeze, roll


def render(pose: tuple[float, ...] | None) -> np.ndarray:
    import cv2

    frame = _background().copy()
    if pose is not None:
        cx, cy, scale, squeeze, *rest = pose
        roll = rest[0] if rest else 0.0
        rgb, alpha = _face_patch()
        base = 0.62  # the patch at scale 1: 93 x 105 px, face about 60 px
        w = max(4, int(round(rgb.shape[1] * base * scale * squeeze)))
        h = max(4, int(round(rgb.shape[0] * base * scale)))
        face = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        a = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)[..., None]
        if roll:  # rotate the patch (padded so the ellipse is not cut) clockwise about its centre
            p = int(np.ceil(0.25 * max(w, h)))
            face = cv2.copyMakeBorder(face, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            a = cv2.copyMakeBorder(a[..., 0], p, p, p, p, cv2.BORDER_CONSTANT, value=0)
            w, h = w + 2 * p, h + 2 * p
            rot = cv2.getRotationMatrix2D((w / 2, h / 2), -float(roll), 1.0)
            face = cv2.warpAffine(face, rot, (w, h), flags=cv2.INTER_LINEAR)
            a = cv2.warpAffine(a, rot, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        # integer placement + sub-pixel shift by affine warp of the patch
        x0f, y0f = cx - w / 2, cy - h / 2
        x0, y0 = int(np.floor(x0f)), int(np.floor(y0f))
        m = np.float32([[1, 0, x0f - x0], [0, 1, y0f - y0]])
        face = cv2.warpAffine(face, m, (w + 1, h + 1))
        a = cv2.warpAffine(a[..., 0], m, (w + 1, h + 1))[..., None]
        fx0, fy0 = max(0, -x0), max(0, -y0)
        fx1, fy1 = min(w + 1, WIDTH - x0), min(h + 1, HEIGHT - y0)
        if fx1 > fx0 and fy1 > fy0:
            region = frame[y0 + fy0:y0 + fy1, x0 + fx0:x0 + fx1]
            aa = a[fy0:fy1, fx0:fx1]
            blend = region.astype(np.float32) * (1 - aa) + face[fy0:fy1, fx0:fx1] * aa
            region[:] = np.clip(blend, 0, 255).astype(np.uint8)
    return frame


def frame_at(corpus: Corpus, t: float) -> np.ndarray:
    for seg, s, e in corpus.segments:
        if s <= t < e:
            return render(head_pose(seg, t - s, e - s))
    seg, s, e = corpus.segments[-1]
    return render(head_pose(seg, t - s, e - s))


def vp8_stream(container, fps: int, width: int, height: int):
    """A libvpx VP8 stream with a browser's realtime settings (keyframe every 100 frames, 600 kbit/s)."""
    stream = container.add_stream("libvpx", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.gop_size = 100
    stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    stream.codec_context.bit_rate = 600_000
    return stream


def encode(corpus: Corpus, fps: int = FPS) -> bytes:
    """VP8 + Opus WebM (file layout) of the corpus, by libvpx / libopus through PyAV."""
    import av

    buf = io.BytesIO()
    container = av.open(buf, mode="w", format="webm")
    vstream = vp8_stream(container, fps, WIDTH, HEIGHT)
    astream = container.add_stream("libopus", rate=SR)
    astream.codec_context.layout = "mono"
    astream.codec_context.bit_rate = 48_000
    samples = corpus.audio
    chunk, apos = 960, 0
    apts = 0
    n_frames = int(round(corpus.duration * fps))
    for i in range(n_frames):
        t = i / fps
        while apos < samples.size and apos / SR <= t + 1 / fps:
            piece = samples[apos:apos + chunk]
            if piece.size < chunk:
                piece = np.pad(piece, (0, chunk - piece.size))
            af = av.AudioFrame.from_ndarray(piece.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
            af.sample_rate = SR
            af.pts = apts
            af.time_base = Fraction(1, SR)
            apts += chunk
            for packet in astream.encode(af):
                container.mux(packet)
            apos += chunk
        frame = av.VideoFrame.from_ndarray(frame_at(corpus, t), format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1, fps)
        for packet in vstream.encode(frame):
            container.mux(packet)
    for packet in astream.encode(None):
        container.mux(packet)
    for packet in vstream.encode(None):
        container.mux(packet)
    container.close()
    return buf.getvalue()


def decode_webm(data: bytes, fps: int = FPS, width: int = WIDTH, height: int = HEIGHT):
    """WebM -> (frames (T,H,W,3) uint8 at ``fps``, frame times, 16 kHz mono float32 audio, audio start)."""
    import av

    frames, times, chunks = [], [], []
    audio_start = None
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
    next_t = 0.0
    with av.open(io.BytesIO(data)) as container:
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    t = float(frame.time)
                    if t + 1e-6 >= next_t:
                        frames.append(frame.to_ndarray(format="rgb24", width=width, height=height))
                        times.append(t)
                        next_t = t + 1.0 / fps - 1e-3
                else:
                    if audio_start is None:
                        audio_start = max(0.0, float(frame.time or 0.0))
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return np.stack(frames), np.asarray(times, dtype=np.float64), audio, audio_start or 0.0
