"""Turn any media file PyAV can read into what the server takes: WebM, VP8/VP9 + Opus.

A WebM file with those codecs is sent byte for byte; the same codecs in another
container (MKV, MP4) are remuxed without re-encoding; anything else (H.264,
AAC, ...) is transcoded to VP8 + Opus with real-time encoder settings.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

VIDEO_OK = {"vp8", "vp9"}
AUDIO_OK = {"opus"}
MAX_WIDTH = 640  # the server analyses at 320 px; more only costs encode time and bandwidth


@dataclass(frozen=True)
class PreparedMedia:
    """WebM bytes ready to stream, how they were made and the media duration (seconds)."""

    data: bytes
    action: str  # "as-is", "remux" or "transcode"
    duration: float
    video_codec: str | None
    audio_codec: str | None


def _probe(path: Path) -> tuple[str, str | None, str | None, float]:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0].codec_context.name if c.streams.video else None
        a = c.streams.audio[0].codec_context.name if c.streams.audio else None
        duration = float(c.duration) / 1_000_000 if c.duration else 0.0
        return c.format.name, v, a, duration


def prepare(path: str | Path) -> PreparedMedia:
    """The file as streamable WebM (as-is, remuxed or transcoded)."""
    import av

    path = Path(path)
    try:
        fmt, vcodec, acodec, duration = _probe(path)
    except av.FFmpegError as exc:
        raise ValueError(f"{path}: not a media file PyAV can read ({exc})") from exc
    if vcodec is None and acodec is None:
        raise ValueError(f"{path}: no audio or video stream")
    codecs_ok = (vcodec in VIDEO_OK or vcodec is None) and (acodec in AUDIO_OK or acodec is None)
    if codecs_ok and "webm" in fmt.split(","):
        return PreparedMedia(live_layout(path.read_bytes()), "as-is", duration, vcodec, acodec)
    try:
        if codecs_ok:
            return PreparedMedia(live_layout(remux(path)), "remux", duration, vcodec, acodec)
        return PreparedMedia(live_layout(transcode(path)), "transcode", duration, vcodec and "vp8",
                             acodec and "opus")
    except av.FFmpegError as exc:
        raise ValueError(f"{path}: cannot convert to WebM ({exc})") from exc


def live_layout(webm: bytes) -> bytes:
    """The stream as a MediaRecorder sends it (unknown-size Segment and Clusters, no SeekHead or Cues),
    so that stopping after any whole block leaves a complete stream; unchanged if it cannot be rewritten."""
    from inter1srv.synthmedia import recorder_layout

    try:
        return recorder_layout(webm)
    except Exception:  # noqa: BLE001 - an odd file is still sent, as it is
        return webm


def remux(path: Path) -> bytes:
    """Copy VP8/VP9 and Opus packets into a WebM container."""
    import av

    buf = io.BytesIO()
    with av.open(str(path)) as src, av.open(buf, mode="w", format="webm") as dst:
        streams = [s for s in (src.streams.video[:1] + src.streams.audio[:1])]
        out = {s.index: dst.add_stream_from_template(s) for s in streams}
        for packet in src.demux(streams):
            if packet.dts is None:
                continue
            packet.stream = out[packet.stream.index]
            dst.mux(packet)
    return buf.getvalue()


def transcode(path: Path) -> bytes:
    """Decode and re-encode the first video and audio streams as VP8 + Opus WebM."""
    import av

    buf = io.BytesIO()
    with av.open(str(path)) as src, av.open(buf, mode="w", format="webm") as dst:
        vin = src.streams.video[0] if src.streams.video else None
        ain = src.streams.audio[0] if src.streams.audio else None
        venc = _video_encoder(dst, vin) if vin is not None else None
        aenc = dst.add_stream("libopus", rate=48000) if ain is not None else None
        resampler = None
        if aenc is not None:
            layout = "mono" if ain.codec_context.channels == 1 else "stereo"
            aenc.codec_context.layout = layout
            aenc.codec_context.bit_rate = 48_000 if layout == "mono" else 64_000
            resampler = av.AudioResampler(format="s16", layout=layout, rate=48000, frame_size=960)
        fps = venc.codec_context.framerate if venc is not None else None
        last_pts = -1
        audio_pts = 0
        for frame in src.decode(*[s for s in (vin, ain) if s is not None]):
            if isinstance(frame, av.VideoFrame) and venc is not None:
                pts = round((frame.time or 0.0) * fps)
                if pts <= last_pts:
                    continue  # variable frame rate faster than the output rate: drop the extra frame
                last_pts = pts
                out = frame.reformat(width=venc.width, height=venc.height, format="yuv420p")
                out.pts, out.time_base = pts, Fraction(1) / fps
                dst.mux(venc.encode(out))
            elif isinstance(frame, av.AudioFrame) and resampler is not None:
                frame.pts = None
                for rf in resampler.resample(frame):
                    rf.pts, audio_pts = audio_pts, audio_pts + rf.samples
                    dst.mux(aenc.encode(rf))
        if resampler is not None:
            for rf in resampler.resample(None):
                rf.pts, audio_pts = audio_pts, audio_pts + rf.samples
                dst.mux(aenc.encode(rf))
        for enc in (venc, aenc):
            if enc is not None:
                dst.mux(enc.encode(None))
    return buf.getvalue()


def _video_encoder(dst, vin):
    rate = vin.average_rate or vin.guessed_rate or Fraction(25)
    rate = Fraction(rate).limit_denominator(1001)
    if rate > 30:
        rate = Fraction(30)
    venc = dst.add_stream("libvpx", rate=rate)
    width, height = vin.codec_context.width, vin.codec_context.height
    if width > MAX_WIDTH:
        width, height = MAX_WIDTH, round(height * MAX_WIDTH / width)
    venc.width, venc.height = width - width % 2, height - height % 2
    venc.pix_fmt = "yuv420p"
    venc.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    venc.codec_context.bit_rate = 600_000
    return venc
