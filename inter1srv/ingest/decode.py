"""MediaDecoder: client WebM bytes in, analysis-rate frames and 16 kHz mono audio out.

``feed()`` demuxes at once (cheap, safe to call on the event loop) and queues
the coded packets; ``decode()`` / ``finish()`` run the codecs (PyAV
``CodecContext``: VP8/VP9 video, Opus/Vorbis audio) and belong in a worker
thread.  One thread may ``feed()`` while another decodes; ``decode()``,
``finish()`` and ``close()`` are serialised by a lock.

Times are *media time*: seconds since the first block of the stream (of a
used track), whatever the file's own origin; for a session, that is the
session-cumulative time since the first frame the client sent.

- Video: every packet is decoded (VP8/VP9 are stateful) but only frames that
  reach the next analysis tick (every ``1/fps`` s, on a grid from 0) are
  converted to ``pixel_format`` at the analysis size, fixed by the first decoded
  frame: ``width`` (never upscaled), aspect kept, height <= ``max_height``, both
  even.  ``rgb24`` (the default) gives (H, W, 3) arrays; ``yuv420p`` gives planar
  I420 as (H * 3 / 2, W), half the bytes, which is what the frontend writes into
  the rings (``workers.pixels`` turns it into RGB).  A frame's time is its own
  media time, not the tick's.
- Audio: decoded, resampled to ``sample_rate``, channels averaged to float32
  mono in [-1, 1], made continuous: sample ``k`` of the whole session is media time
  ``k / sample_rate``.  Leading silence is padded when audio starts after 0;
  holes over ``gap_threshold`` seconds between packets are filled with zeros
  and reported.
- Errors: :class:`IngestError` ``ih5004`` (fatal, raised) for malformed WebM
  or packets a codec rejects; ``ih5001`` when there is no usable video:
  a warning while audio is usable, raised (fatal) when audio is unusable too.
  No other exception escapes from PyAV.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from shm.media_ring import pixel_format_code

from .ebml import Block, TrackInfo, WebmDemuxer
from .errors import MALFORMED_MEDIA, NO_VIDEO, IngestError

VIDEO_CODECS = {"V_VP8": "vp8", "V_VP9": "vp9"}
AUDIO_CODECS = {"A_OPUS": ("opus", "libopus"), "A_VORBIS": ("vorbis", "libvorbis")}
_PTS_BASE = Fraction(1, 1_000_000)
_EMPTY = np.zeros(0, dtype=np.float32)
_AV_ERRORS = (av.error.FFmpegError, ValueError, OSError)  # what PyAV may raise on bad media


@dataclass
class DecodedMedia:
    """What one ``decode()`` / ``finish()`` call produced (only the new part).

    ``audio[0]`` is media time ``audio_start``; successive calls continue each
    other exactly.  ``video_until`` / ``audio_until``: every frame / sample
    before that media time has been delivered (now or earlier); None when the
    stream has no usable track of that kind.  ``warnings``: non-fatal
    protocol errors for the client (``ih5001`` no usable video, audio goes
    on).  ``gaps``: (modality, start, end) holes in the media timeline (audio
    holes are zero-filled); informative, not errors.
    """

    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)
    audio: np.ndarray = field(default_factory=lambda: _EMPTY)
    audio_start: float = 0.0
    video_until: float | None = None
    audio_until: float | None = None
    warnings: list[IngestError] = field(default_factory=list)
    gaps: list[tuple[str, float, float]] = field(default_factory=list)


def analysis_size(src_w: int, src_h: int, width: int, max_height: int) -> tuple[int, int]:
    """Output (w, h): ``width`` but never upscaled, aspect kept, h <= max_height, both even."""
    w = min(width, src_w)
    h = src_h * w / src_w
    if h > max_height:
        h = max_height
        w = src_w * h / src_h
    return max(2, int(round(w)) // 2 * 2), max(2, int(round(h)) // 2 * 2)


def analysis_frame(reformatter: VideoReformatter, frame: av.VideoFrame, w: int, h: int,
                   pixel_format: str) -> np.ndarray:
    """``frame`` scaled to ``w`` x ``h`` (AREA) as an array in ``pixel_format``.

    I420 comes out BT.601 limited range whatever the source is tagged with (phones tag H.264
    BT.709, some sources full range): ``workers.pixels`` converts it back with BT.601. RGB takes
    the source's tags into account itself.
    """
    if pixel_format == "yuv420p":
        out = reformatter.reformat(frame, width=w, height=h, format="yuv420p", interpolation="AREA",
                                   dst_colorspace="ITU601", dst_color_range="MPEG")
    else:
        out = reformatter.reformat(frame, width=w, height=h, format=pixel_format, interpolation="AREA")
    return out.to_ndarray()


def _wrap(exc: Exception, what: str) -> IngestError:
    return IngestError(MALFORMED_MEDIA, f"{what}: {exc}")


class MediaDecoder:
    """Incremental decoder of one client's WebM stream (see module docstring)."""

    def __init__(
        self,
        *,
        fps: float = 10.0,
        width: int = 320,
        max_height: int = 320,
        sample_rate: int = 16000,
        gap_threshold: float = 0.1,
        video_gap_threshold: float = 1.0,
        max_gap: float = 600.0,
        threads: int = 1,
        pixel_format: str = "rgb24",
    ) -> None:
        if fps <= 0 or width < 2 or max_height < 2 or sample_rate <= 0:
            raise ValueError("fps, width, max_height and sample_rate must be positive")
        pixel_format_code(pixel_format)  # ValueError for an unknown format
        self.pixel_format = pixel_format
        self.fps = fps
        self.width = width
        self.max_height = max_height
        self.sample_rate = sample_rate
        self.gap_threshold = gap_threshold
        self.video_gap_threshold = video_gap_threshold
        self.max_gap = max_gap
        self.threads = threads
        self._demux = WebmDemuxer()
        self._lock = threading.Lock()  # guards the demuxer, the queues and pending warnings
        self._decode_lock = threading.Lock()  # serialises decode/finish/close
        self._tracks: dict[int, TrackInfo] | None = None
        self._video: TrackInfo | None = None
        self._audio: TrackInfo | None = None
        self._vq: deque[tuple[float, Block]] = deque()
        self._aq: deque[tuple[float, Block]] = deque()
        self._origin: float | None = None
        self._queued_until: float | None = None
        self._pending_warnings: list[IngestError] = []
        self._error: IngestError | None = None
        self._fed_any = False
        self._ended = False
        self._closed = False
        # video state
        self._vctx: av.CodecContext | None = None
        self._v_started = False  # a keyframe has been given to the decoder
        self._v_last: float | None = None  # media time of the last decoded video packet
        self._v_step: float | None = None  # estimated frame duration
        self._v_last_frame: float | None = None  # media time of the last decoded frame
        self._next_tick = 0.0
        self._size: tuple[int, int] | None = None
        self._reformatter = VideoReformatter()
        self._video_until = 0.0
        # audio state
        self._actx: av.CodecContext | None = None
        self._resampler: av.AudioResampler | None = None
        self._a_fed: float | None = None  # media time reached by the samples fed to the resampler
        self._a_format: tuple[str, str, int] | None = None
        self._a_out = 0  # samples (at sample_rate) delivered so far, padding included

    # --- properties -----------------------------------------------------------
    @property
    def tracks(self) -> dict[int, TrackInfo] | None:
        return self._tracks

    @property
    def has_video(self) -> bool:
        return self._video is not None

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of output frames, fixed by the first decoded frame; None before."""
        return self._size

    @property
    def queued_until(self) -> float | None:
        """Media time of the newest demuxed packet (None before any)."""
        return self._queued_until

    @property
    def decoded_until(self) -> float:
        """Media time up to which every usable modality has been delivered."""
        untils = []
        if self._video is not None:
            untils.append(self._video_until)
        if self._audio is not None:
            untils.append(self._a_out / self.sample_rate)
        return min(untils) if untils else 0.0

    @property
    def truncated(self) -> str | None:
        """After finish(): why the stream looked cut off mid-element, else None."""
        return self._demux.truncation if self._demux.truncated else None

    # --- feeding --------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Demux ``data`` (any split of the stream) and queue its packets.  Raises IngestError."""
        with self._lock:
            self._check_usable()
            if self._ended:
                raise RuntimeError("feed() after finish()")
            if len(data):
                self._fed_any = True
            try:
                items = self._demux.feed(data)
            except IngestError as exc:
                self._error = exc
                raise
            self._take(items)

    def _check_usable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise RuntimeError("MediaDecoder is closed")

    def _take(self, items: list[TrackInfo | Block]) -> None:
        for item in items:
            if isinstance(item, TrackInfo):
                if self._tracks is None:
                    self._select_tracks()
                continue
            if self._video is not None and item.track == self._video.number:
                queue = self._vq
            elif self._audio is not None and item.track == self._audio.number:
                queue = self._aq
            else:
                continue  # a track we do not use
            if self._origin is None:
                self._origin = item.time
            t = item.time - self._origin
            queue.append((t, item))
            if self._queued_until is None or t > self._queued_until:
                self._queued_until = t

    def _select_tracks(self) -> None:
        tracks = self._demux.tracks
        if tracks is None:
            return
        self._tracks = tracks
        videos = [t for t in tracks.values() if t.kind == "video"]
        audios = [t for t in tracks.values() if t.kind == "audio"]
        self._video = next((t for t in videos if t.codec_id in VIDEO_CODECS), None)
        self._audio = next((t for t in audios if t.codec_id in AUDIO_CODECS), None)
        if self._video is not None:
            return
        if videos:
            why = f"unsupported video codec {videos[0].codec_id} (only VP8 and VP9)"
        else:
            why = "the stream has no video track"
        if self._audio is None:
            audio_why = (
                f"unsupported audio codec {audios[0].codec_id}" if audios else "no audio track either"
            )
            self._error = IngestError(NO_VIDEO, f"no usable media: {why}; {audio_why}")
            raise self._error
        self._pending_warnings.append(IngestError(NO_VIDEO, f"{why}; continuing audio-only", fatal=False))

    # --- decoding -------------------------------------------------------------
    def decode(self, until: float | None = None) -> DecodedMedia:
        """Decode queued packets with media time < ``until`` (None: all queued)."""
        with self._decode_lock:
            return self._decode(until, flush=False)

    def finish(self) -> DecodedMedia:
        """End of stream: decode everything left and flush the codecs."""
        with self._decode_lock:
            with self._lock:
                self._check_usable()
                if not self._ended:
                    self._ended = True
                    self._take(self._demux.end())
                    if self._tracks is None and self._fed_any:
                        self._error = IngestError(MALFORMED_MEDIA, "the stream ended before its Tracks")
                        raise self._error
            return self._decode(None, flush=True)

    def close(self) -> None:
        """Drain and drop the codecs (safe to call more than once, from any thread)."""
        with self._decode_lock:
            self._closed = True
            for ctx in (self._vctx, self._actx):
                if ctx is not None:
                    try:
                        ctx.decode(None)  # drain: frame-threaded decoders can deadlock on GC otherwise
                    except Exception:  # noqa: BLE001 - closing must not fail
                        pass
            self._vctx = self._actx = None
            self._resampler = None
            with self._lock:
                self._vq.clear()
                self._aq.clear()

    def __enter__(self) -> MediaDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decode(self, until: float | None, *, flush: bool) -> DecodedMedia:
        with self._lock:
            self._check_usable()
            limit = math.inf if until is None else until
            vpk = _pop_before(self._vq, limit)
            apk = _pop_before(self._aq, limit)
            v_next = self._vq[0][0] if self._vq else None
            out = DecodedMedia(warnings=self._pending_warnings)
            self._pending_warnings = []
        out.audio_start = self._a_out / self.sample_rate
        chunks: list[np.ndarray] = []
        try:
            for t, block in vpk:
                self._decode_video(t, block, out)
            for t, block in apk:
                self._decode_audio(t, block, out, chunks)
            if flush:
                self._flush(out, chunks)
        except IngestError as exc:
            self._error = exc
            raise
        if chunks:
            out.audio = np.concatenate(chunks)
        self._a_out += len(out.audio)
        if self._video is not None:
            if v_next is not None:
                self._video_until = max(self._video_until, v_next)
            elif self._v_last is not None:
                end = self._v_last + (self._v_step or 0.0) if flush else self._v_last
                self._video_until = max(self._video_until, end)
            out.video_until = self._video_until
        if self._audio is not None:
            out.audio_until = self._a_out / self.sample_rate
        return out

    # --- video ----------------------------------------------------------------
    def _decode_video(self, t: float, block: Block, out: DecodedMedia) -> None:
        assert self._video is not None
        if not self._v_started:
            if not block.keyframe:
                return  # cannot decode before the first keyframe
            self._v_started = True
        if self._vctx is None:
            self._vctx = self._open_codec(VIDEO_CODECS[self._video.codec_id], self._video)
        if self._v_last is not None and t > self._v_last:
            self._v_step = t - self._v_last
        self._v_last = t if self._v_last is None else max(self._v_last, t)
        packet = av.Packet(block.data)
        packet.pts = round(t * 1_000_000)
        packet.time_base = _PTS_BASE
        try:
            frames = self._vctx.decode(packet)
        except _AV_ERRORS as exc:
            raise _wrap(exc, f"video packet at {t:.3f}s rejected by the decoder") from exc
        for frame in frames:
            self._video_frame(frame, t, out)

    def _video_frame(self, frame: av.VideoFrame, fallback: float, out: DecodedMedia) -> None:
        t = frame.pts / 1_000_000 if frame.pts is not None else fallback
        if self._v_last_frame is not None and t - self._v_last_frame > self.video_gap_threshold:
            self._gap(out, "video", self._v_last_frame, t)
        self._v_last_frame = t
        # a frame up to a quarter of a (source or analysis) frame early still takes the tick
        tol = 0.25 * min(1.0 / self.fps, self._v_step or math.inf)
        if t + tol < self._next_tick:
            return
        self._next_tick = (math.floor((t + tol) * self.fps) + 1) / self.fps
        if self._size is None:
            self._size = analysis_size(frame.width, frame.height, self.width, self.max_height)
        w, h = self._size
        try:
            # a persistent reformatter keeps its swscale context: ~5x cheaper than frame.reformat()
            pixels = analysis_frame(self._reformatter, frame, w, h, self.pixel_format)
        except _AV_ERRORS as exc:
            raise _wrap(exc, "video frame conversion failed") from exc
        out.frames.append((t, pixels))

    def _open_codec(self, names: str | tuple[str, ...], track: TrackInfo) -> av.CodecContext:
        last: Exception | None = None
        for name in (names,) if isinstance(names, str) else names:
            try:
                ctx = av.CodecContext.create(name, "r")
                if track.codec_private:
                    ctx.extradata = track.codec_private
                ctx.thread_type = "SLICE"  # never FRAME: see close()
                ctx.thread_count = self.threads
                ctx.open()
                return ctx
            except _AV_ERRORS as exc:
                last = exc
        raise IngestError(MALFORMED_MEDIA, f"cannot open a decoder for {track.codec_id}: {last}")

    # --- audio ----------------------------------------------------------------
    def _decode_audio(self, t: float, block: Block, out: DecodedMedia, chunks: list[np.ndarray]) -> None:
        assert self._audio is not None
        if self._actx is None:
            self._actx = self._open_codec(AUDIO_CODECS[self._audio.codec_id], self._audio)
        packet = av.Packet(block.data)
        try:
            frames = self._actx.decode(packet)
        except _AV_ERRORS as exc:
            raise _wrap(exc, f"audio packet at {t:.3f}s rejected by the decoder") from exc
        # Matroska: a block's presentation time is its timestamp minus CodecDelay; the decoder
        # drops the pre-skip itself, so the first packet's output starts at its own timestamp.
        start = t if self._a_fed is None else t - self._audio.codec_delay
        for frame in frames:
            self._audio_frame(frame, start, out, chunks)
            start = self._a_fed if self._a_fed is not None else start

    def _audio_frame(self, frame: av.AudioFrame, start: float, out: DecodedMedia, chunks: list[np.ndarray]) -> None:
        fmt = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._resampler is None:
            # keep the channels through the resampler and average them afterwards: an
            # L=R stereo mic then reads exactly like a mono one (swr's downmix adds 3 dB)
            self._resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=self.sample_rate)
            self._a_format = fmt
            lead = max(0.0, start)  # audio starting after media time 0: leading silence
            if lead > self.gap_threshold:
                self._gap(out, "audio", 0.0, lead)
            if lead > 0:
                chunks.append(np.zeros(int(round(lead * self.sample_rate)), np.float32))
            self._a_fed = lead
        elif fmt != self._a_format:
            raise IngestError(MALFORMED_MEDIA, f"audio format changed mid-stream {self._a_format} -> {fmt}")
        assert self._a_fed is not None
        if start - self._a_fed > self.gap_threshold:
            self._gap(out, "audio", self._a_fed, start)
            while start - self._a_fed > 1e-9:  # in pieces of at most a second
                piece = min(1.0, start - self._a_fed)
                self._resample(self._silence(piece), chunks)
                self._a_fed += piece
        frame.pts = None
        self._resample(frame, chunks)
        self._a_fed += frame.samples / frame.sample_rate

    def _silence(self, seconds: float) -> av.AudioFrame:
        assert self._a_format is not None
        fmt, layout, rate = self._a_format
        frame = av.AudioFrame(format=fmt, layout=layout, samples=max(1, int(round(seconds * rate))))
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = rate
        return frame

    def _resample(self, frame: av.AudioFrame | None, chunks: list[np.ndarray]) -> None:
        assert self._resampler is not None
        try:
            for res in self._resampler.resample(frame):
                planes = res.to_ndarray()  # (channels, samples)
                mono = planes[0] if len(planes) == 1 else planes.mean(axis=0)
                chunks.append(np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False))
        except _AV_ERRORS as exc:
            raise _wrap(exc, "audio resampling failed") from exc

    # --- end of stream ----------------------------------------------------------
    def _flush(self, out: DecodedMedia, chunks: list[np.ndarray]) -> None:
        if self._vctx is not None:
            try:
                frames = self._vctx.decode(None)
            except _AV_ERRORS as exc:
                raise _wrap(exc, "video decoder flush failed") from exc
            for frame in frames:
                self._video_frame(frame, self._v_last or 0.0, out)
        if self._actx is not None:
            try:
                frames = self._actx.decode(None)
            except _AV_ERRORS as exc:
                raise _wrap(exc, "audio decoder flush failed") from exc
            for frame in frames:
                self._audio_frame(frame, self._a_fed or 0.0, out, chunks)
        if self._resampler is not None:
            self._resample(None, chunks)

    def _gap(self, out: DecodedMedia, kind: str, start: float, end: float) -> None:
        if end - start > self.max_gap:  # a bogus timestamp would make us allocate hours of silence
            raise IngestError(MALFORMED_MEDIA, f"{kind} timestamps jump from {start:.3f}s to {end:.3f}s")
        out.gaps.append((kind, start, end))


def _pop_before(queue: deque[tuple[float, Block]], limit: float) -> list[tuple[float, Block]]:
    taken = []
    while queue and queue[0][0] < limit:
        taken.append(queue.popleft())
    return taken
