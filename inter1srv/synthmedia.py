"""Scripted synthetic WebM media made by real encoders (libvpx + libopus via PyAV).

Tests, the perf suite and demos need reproducible recordings with known
content: a textured moving "head" over a background and speech-like audio
(voiced harmonic syllables with pauses).  Each :class:`Segment` of a script
says what happens during its seconds, so tests know what the analysis should
find.  Nothing here is used by the server itself.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Segment:
    """A stretch of scripted media.

    ``speech``: voiced syllables are present; ``pitch_hz`` their F0;
    ``loudness_db`` their level in dBFS; ``pause_every_s`` inserts a silent
    pause of ``pause_s`` that often (hesitant speech); ``motion`` is one of
    ``still``, ``nod``, ``shake``, ``fidget``, ``absent`` (head leaves frame).
    """

    seconds: float
    speech: bool = True
    pitch_hz: float = 140.0
    loudness_db: float = -20.0
    pause_every_s: float = 0.0
    pause_s: float = 0.0
    motion: str = "still"


@dataclass
class Script:
    segments: list[Segment] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return sum(s.seconds for s in self.segments)

    def segment_at(self, t: float) -> Segment:
        acc = 0.0
        for seg in self.segments:
            if t < acc + seg.seconds:
                return seg
            acc += seg.seconds
        return self.segments[-1]

    def start_of(self, index: int) -> float:
        return sum(s.seconds for s in self.segments[:index])


def default_script(seconds: float = 40.0) -> Script:
    """A conversation-like script cycling through lively, hesitant and silent parts."""
    pattern = [
        Segment(8, speech=True, pitch_hz=150, loudness_db=-18, motion="nod"),
        Segment(6, speech=True, pitch_hz=120, loudness_db=-26, pause_every_s=1.2, pause_s=0.8, motion="still"),
        Segment(7, speech=False, motion="still"),
        Segment(6, speech=True, pitch_hz=210, loudness_db=-14, motion="fidget"),
        Segment(5, speech=False, motion="absent"),
        Segment(8, speech=True, pitch_hz=135, loudness_db=-20, motion="shake"),
    ]
    segs: list[Segment] = []
    total = 0.0
    i = 0
    while total < seconds - 1e-9:
        seg = pattern[i % len(pattern)]
        take = min(seg.seconds, seconds - total)
        segs.append(Segment(take, seg.speech, seg.pitch_hz, seg.loudness_db, seg.pause_every_s, seg.pause_s, seg.motion))
        total += take
        i += 1
    return Script(segs)


def synth_audio(script: Script, sample_rate: int = 48000, seed: int = 7) -> np.ndarray:
    """Mono float32 speech-like audio following the script."""
    rng = np.random.default_rng(seed)
    n_total = int(round(script.duration * sample_rate))
    out = np.zeros(n_total, dtype=np.float32)
    # low background noise so silence is not digital zero
    out += (rng.standard_normal(n_total) * 10 ** (-62 / 20)).astype(np.float32)
    pos = 0
    for seg in script.segments:
        n = int(round(seg.seconds * sample_rate))
        if seg.speech:
            out[pos:pos + n] += _speech_like(n, sample_rate, seg, rng)
        pos += n
    return np.clip(out, -1.0, 1.0)


def _speech_like(n: int, sr: int, seg: Segment, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sr
    sig = np.zeros(n, dtype=np.float64)
    # syllables of 120-260 ms separated by 30-90 ms gaps, words end with longer gaps
    cursor = 0.0
    dur = n / sr
    next_pause = seg.pause_every_s if seg.pause_every_s > 0 else math.inf
    while cursor < dur:
        if cursor >= next_pause:
            cursor += seg.pause_s
            next_pause = cursor + seg.pause_every_s
            continue
        syl = rng.uniform(0.12, 0.26)
        a, b = int(cursor * sr), min(n, int((cursor + syl) * sr))
        if b <= a:
            break
        tt = t[a:b] - cursor
        f0 = seg.pitch_hz * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(2, 5) * tt)) * rng.uniform(0.9, 1.1)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
        env = np.sin(np.pi * np.clip(tt / syl, 0, 1)) ** 0.6
        sig[a:b] += voiced * env
        cursor += syl + rng.uniform(0.03, 0.09)
        if rng.random() < 0.25:
            cursor += rng.uniform(0.1, 0.2)
    peak = np.sqrt(np.mean(sig[sig != 0] ** 2)) if np.any(sig) else 1.0
    return (sig / peak * 10 ** (seg.loudness_db / 20)).astype(np.float32)


def _head_position(script: Script, t: float, width: int, height: int) -> tuple[float, float, float] | None:
    seg = script.segment_at(t)
    cx, cy, r = width / 2, height / 2, height * 0.22
    if seg.motion == "absent":
        return None
    if seg.motion == "nod":
        cy += height * 0.05 * math.sin(2 * math.pi * 2.0 * t)
    elif seg.motion == "shake":
        cx += width * 0.06 * math.sin(2 * math.pi * 2.2 * t)
    elif seg.motion == "fidget":
        cx += width * 0.08 * math.sin(2 * math.pi * 0.7 * t) + width * 0.02 * math.sin(2 * math.pi * 5.3 * t)
        cy += height * 0.05 * math.cos(2 * math.pi * 1.1 * t)
    return cx, cy, r


def synth_frame(script: Script, t: float, width: int, height: int) -> np.ndarray:
    """One RGB frame: a gradient background and a textured head disc."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[..., 0] = 40 + (xx * 60 // max(1, width))
    img[..., 1] = 60 + (yy * 60 // max(1, height))
    img[..., 2] = 90
    head = _head_position(script, t, width, height)
    if head is not None:
        cx, cy, r = head
        d2 = ((xx - cx) / (r * 0.8)) ** 2 + ((yy - cy) / r) ** 2
        mask = d2 <= 1.0
        shade = (200 - 40 * d2).clip(0, 255)
        img[mask, 0] = shade[mask]
        img[mask, 1] = (shade[mask] * 0.75).astype(np.uint8)
        img[mask, 2] = (shade[mask] * 0.6).astype(np.uint8)
        for ex in (-0.35, 0.35):  # eyes and mouth give the disc texture
            ey = cy - 0.2 * r
            m = ((xx - (cx + ex * r)) ** 2 + (yy - ey) ** 2) <= (0.1 * r) ** 2
            img[m] = (30, 30, 30)
        m = (np.abs(yy - (cy + 0.45 * r)) < 0.05 * r) & (np.abs(xx - cx) < 0.35 * r)
        img[m] = (120, 30, 30)
    return img


def encode_webm(
    script: Script,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 20,
    video_codec: str = "libvpx",
    audio: bool = True,
    video: bool = True,
    gop: int = 100,
    live: bool = True,
    frame: Callable[[Script, float, int, int], np.ndarray] | None = None,
) -> bytes:
    """Encode the script as WebM (VP8 or VP9 + Opus).

    ``live=True`` (default): MediaRecorder's layout (see :func:`recorder_layout`):
    unknown-size Segment and Clusters, no SeekHead, no Cues.  ``live=False``:
    ffmpeg's file layout: known sizes, SeekHead, Void, Cues, Tags.
    ``video_codec``: ``libvpx`` (VP8) or ``libvpx-vp9`` (VP9).
    ``frame``: draws the picture at media time t (default :func:`synth_frame`, a textured disc;
    the perf suite passes a real face photo moved by the script).
    """
    import av

    buf = io.BytesIO()
    container = av.open(buf, mode="w", format="webm")
    vstream = astream = None
    if video:
        vstream = container.add_stream(video_codec, rate=fps)
        vstream.width, vstream.height = width, height
        vstream.pix_fmt = "yuv420p"
        vstream.codec_context.gop_size = gop
        vstream.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        vstream.codec_context.bit_rate = 400_000
    if audio:
        astream = container.add_stream("libopus", rate=48000)
        astream.codec_context.layout = "mono"
        astream.codec_context.bit_rate = 32_000
    duration = script.duration
    n_frames = int(round(duration * fps))
    samples = synth_audio(script) if audio else None
    apos = 0
    chunk = 960  # 20 ms at 48 kHz
    for i in range(n_frames if video else 0):
        t = i / fps
        if astream is not None and samples is not None:
            while apos < len(samples) and apos / 48000 <= t + 1 / fps:
                apos = _encode_audio_chunk(container, astream, samples, apos, chunk)
        vframe = av.VideoFrame.from_ndarray((frame or synth_frame)(script, t, width, height), format="rgb24")
        vframe.pts = i
        vframe.time_base = Fraction(1, fps)
        for packet in vstream.encode(vframe):
            container.mux(packet)
    if astream is not None and samples is not None:
        while apos < len(samples):
            apos = _encode_audio_chunk(container, astream, samples, apos, chunk)
        for packet in astream.encode(None):
            container.mux(packet)
    if vstream is not None:
        for packet in vstream.encode(None):
            container.mux(packet)
    container.close()
    data = buf.getvalue()
    return recorder_layout(data) if live else data


_UNKNOWN_SIZE = bytes.fromhex("01FFFFFFFFFFFFFF")  # 8-byte "unknown" size, as Chrome writes it
_INFO_DURATION = 0x4489


def recorder_layout(webm: bytes) -> bytes:
    """Rewrite a WebM file into the layout browsers' MediaRecorder streams.

    The Segment and every Cluster get an unknown size (``01 FF FF FF FF FF FF FF``),
    SeekHead and Cues are dropped and Info loses its Duration (a live recorder
    knows neither sizes nor the end).  Everything else (EBML header, Info,
    Tracks, Void, Tags, the blocks) is copied byte for byte.
    """
    from inter1srv.ingest import ebml

    out = bytearray()
    for eid, head, body, end in _walk(webm, 0, len(webm)):
        if eid != ebml.SEGMENT:
            out += webm[head:end]
            continue
        out += webm[head:head + 4] + _UNKNOWN_SIZE
        for cid, chead, cbody, cend in _walk(webm, body, end):
            if cid in (ebml.SEEK_HEAD, ebml.CUES):
                continue
            if cid == ebml.CLUSTER:
                out += webm[chead:chead + 4] + _UNKNOWN_SIZE + webm[cbody:cend]
            elif cid == ebml.INFO:
                kept = b"".join(webm[h:e] for i, h, _, e in _walk(webm, cbody, cend) if i != _INFO_DURATION)
                out += webm[chead:chead + 4] + _size_vint(len(kept)) + kept
            else:
                out += webm[chead:cend]
    return bytes(out)


def _size_vint(n: int) -> bytes:
    return (n | (1 << 56)).to_bytes(8, "big")


def _walk(data: bytes, pos: int, end: int):
    """(id, header start, payload start, payload end) of the elements in data[pos:end].

    An unknown-size Segment runs to ``end``; an unknown-size Cluster to the first
    element that cannot be its child.
    """
    from inter1srv.ingest import ebml

    while pos < end:
        eid, n = ebml.read_id(data, pos, end)
        size, m = ebml.read_size(data, pos + n, end)
        body = pos + n + m
        if size != ebml.UNKNOWN_SIZE:
            stop = body + size
        elif eid == ebml.CLUSTER:
            stop = _unknown_cluster_end(data, body, end)
        else:
            stop = end
        yield eid, pos, body, min(stop, end)
        pos = stop


def _unknown_cluster_end(data: bytes, pos: int, end: int) -> int:
    """Where an unknown-size Cluster starting its payload at ``pos`` ends."""
    from inter1srv.ingest import ebml

    allowed = ebml.CLUSTER_CHILDREN | ebml.GLOBAL_IDS
    while pos < end:
        eid, n = ebml.read_id(data, pos, end)
        if eid not in allowed:
            break
        size, m = ebml.read_size(data, pos + n, end)
        pos += n + m + size
    return min(pos, end)


def _encode_audio_chunk(container, astream, samples: np.ndarray, apos: int, chunk: int) -> int:
    import av

    part = samples[apos:apos + chunk]
    if len(part) < chunk:
        part = np.pad(part, (0, chunk - len(part)))
    frame = av.AudioFrame.from_ndarray(part.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = 48000
    frame.pts = apos
    frame.time_base = Fraction(1, 48000)
    for packet in astream.encode(frame):
        container.mux(packet)
    return apos + chunk


# --- a minimal WebM writer, for hand-built streams in tests ---------------------------
def ebml_id(eid: int) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big")


def ebml_size(n: int) -> bytes:
    """Shortest size vint for ``n`` (all-ones values are reserved for "unknown")."""
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError("size too large for a vint")


def ebml_element(eid: int, payload: bytes | int | float | str) -> bytes:
    """One element; ints are written as unsigned integers, floats as 8-byte doubles."""
    if isinstance(payload, bool | int):
        payload = int(payload).to_bytes(max(1, (int(payload).bit_length() + 7) // 8), "big")
    elif isinstance(payload, float):
        payload = struct.pack(">d", payload)
    elif isinstance(payload, str):
        payload = payload.encode()
    return ebml_id(eid) + ebml_size(len(payload)) + payload


def block_payload(track: int, rel: int, flags: int, frames: list[bytes], lacing: str | None = None) -> bytes:
    """A (Simple)Block payload holding ``frames``, laced ``xiph``, ``ebml`` or ``fixed`` (or not)."""
    if lacing is None:
        if len(frames) != 1:
            raise ValueError("several frames need lacing")
        return ebml_size(track) + rel.to_bytes(2, "big", signed=True) + bytes([flags]) + frames[0]
    head = bytearray([len(frames) - 1])
    sizes = [len(f) for f in frames]
    if lacing == "xiph":
        bits = 0b010
        for size in sizes[:-1]:
            head += b"\xff" * (size // 255) + bytes([size % 255])
    elif lacing == "ebml":
        bits = 0b110
        head += ebml_size(sizes[0])
        for prev, size in zip(sizes[:-2], sizes[1:-1], strict=True):
            diff = size - prev
            for length in range(1, 9):
                bias = (1 << (7 * length - 1)) - 1
                if -bias <= diff <= bias:
                    head += ((diff + bias) | (1 << (7 * length))).to_bytes(length, "big")
                    break
    elif lacing == "fixed":
        bits = 0b100
        if len(set(sizes)) != 1:
            raise ValueError("fixed lacing needs frames of one size")
    else:
        raise ValueError(f"unknown lacing {lacing!r}")
    return (ebml_size(track) + rel.to_bytes(2, "big", signed=True) + bytes([flags | bits])
            + bytes(head) + b"".join(frames))


@dataclass(frozen=True)
class MuxTrack:
    """A track for :func:`mux_webm`; ``kind`` is ``video`` or ``audio``."""

    number: int
    kind: str
    codec_id: str
    codec_private: bytes = b""
    width: int = 320
    height: int = 240
    sample_rate: float = 48000.0
    channels: int = 1
    default_duration_ns: int = 0
    codec_delay_ns: int = 0


def mux_webm(
    tracks: list[MuxTrack],
    blocks,
    *,
    doc_type: str = "webm",
    live: bool = True,
    cluster_seconds: float = 1.0,
) -> bytes:
    """A WebM stream from ``blocks`` (objects with ``track``, ``time`` (s), ``keyframe``, ``data``).

    ``live``: unknown-size Segment and Clusters (MediaRecorder) instead of known sizes.
    A new Cluster starts every ``cluster_seconds`` (and whenever time goes backwards).
    """
    ms = 1_000_000
    head = ebml_element(0x1A45DFA3, b"".join([
        ebml_element(0x4286, 1), ebml_element(0x42F7, 1), ebml_element(0x42F2, 4),
        ebml_element(0x42F3, 8), ebml_element(0x4282, doc_type), ebml_element(0x4287, 4),
        ebml_element(0x4285, 2),
    ]))
    info = ebml_element(0x1549A966, ebml_element(0x2AD7B1, ms) + ebml_element(0x4D80, "synthmedia"))
    entries = []
    for t in tracks:
        fields = [ebml_element(0xD7, t.number), ebml_element(0x73C5, t.number),
                  ebml_element(0x83, 1 if t.kind == "video" else 2), ebml_element(0x86, t.codec_id)]
        if t.codec_private:
            fields.append(ebml_element(0x63A2, t.codec_private))
        if t.default_duration_ns:
            fields.append(ebml_element(0x23E383, t.default_duration_ns))
        if t.codec_delay_ns:
            fields.append(ebml_element(0x56AA, t.codec_delay_ns))
        if t.kind == "video":
            fields.append(ebml_element(0xE0, ebml_element(0xB0, t.width) + ebml_element(0xBA, t.height)))
        else:
            fields.append(ebml_element(0xE1, ebml_element(0xB5, float(t.sample_rate))
                                       + ebml_element(0x9F, t.channels)))
        entries.append(ebml_element(0xAE, b"".join(fields)))
    body = bytearray(info + ebml_element(0x1654AE6B, b"".join(entries)))
    cluster: bytearray | None = None
    cluster_ms = 0

    def close_cluster() -> None:
        if cluster is not None:
            size = _UNKNOWN_SIZE if live else ebml_size(len(cluster))
            body.extend(ebml_id(0x1F43B675) + size + cluster)

    for b in blocks:
        t_ms = int(round(b.time * 1000))
        if cluster is None or t_ms < cluster_ms or t_ms - cluster_ms >= min(cluster_seconds * 1000, 32767):
            close_cluster()
            cluster, cluster_ms = bytearray(ebml_element(0xE7, t_ms)), t_ms
        flags = 0x80 if b.keyframe else 0
        cluster += ebml_element(0xA3, block_payload(b.track, t_ms - cluster_ms, flags, [b.data]))
    close_cluster()
    seg_size = _UNKNOWN_SIZE if live else ebml_size(len(body))
    return head + ebml_id(0x18538067) + seg_size + bytes(body)


def encode_mp4(
    seconds: float,
    *,
    vcodec: str = "libx264",
    acodec: str = "aac",
    rate: int = 44100,
    fps: int = 15,
    size: tuple[int, int] = (320, 240),
) -> bytes:
    """The default script as MP4 (H.264 + AAC by default): input for the remux/transcode paths."""
    import av

    script = default_script(seconds)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as c:
        v = c.add_stream(vcodec, rate=fps)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        a = c.add_stream(acodec, rate=rate)
        a.codec_context.layout = "mono"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(synth_frame(script, i / fps, *size), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            c.mux(v.encode(frame))
        samples = synth_audio(script, sample_rate=rate)
        n = a.codec_context.frame_size or 1024
        for pos in range(0, len(samples), n):
            block = np.pad(samples[pos:pos + n], (0, max(0, pos + n - len(samples))))
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, pos
            c.mux(a.encode(frame))
        c.mux(v.encode(None))
        c.mux(a.encode(None))
    return buf.getvalue()
