"""A media source for whole files in other containers (MP4, MOV, Matroska with any codec).

PyAV's container demuxer reads the file from memory; packets are decoded in
file order up to a media-time limit, so the pipeline paces it exactly like
:class:`~inter1srv.ingest.decode.MediaDecoder` (same analysis frames: one per
``1/fps`` tick at the analysis size; same audio: 16 kHz mono float32,
continuous from media time 0). Media time 0 is the earliest stream start.
Runs in a thread-pool thread, like the WebM decoder.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from inter1srv.ingest.decode import DecodedMedia, analysis_frame, analysis_size
from inter1srv.ingest.errors import MALFORMED_MEDIA, NO_VIDEO, IngestError
from shm.media_ring import pixel_format_code

_AV_ERRORS = (av.error.FFmpegError, ValueError, OSError, EOFError)


def _seconds(value: int | None, time_base) -> float | None:
    return None if value is None or time_base is None else float(value * time_base)


class ContainerSource:
    """Whole-file decoder with the pipeline's decode/finish interface (see module docstring)."""

    truncated: str | None = None

    def __init__(self, data: bytes, *, fps: float, width: int, max_height: int, sample_rate: int = 16000,
                 pixel_format: str = "rgb24"):
        pixel_format_code(pixel_format)  # ValueError for an unknown format
        self.fps, self.width, self.max_height, self.sample_rate = fps, width, max_height, sample_rate
        self.pixel_format = pixel_format
        self._lock = threading.Lock()
        try:
            self._container = av.open(io.BytesIO(data), mode="r")
        except _AV_ERRORS as exc:
            raise IngestError(MALFORMED_MEDIA, f"the file could not be read as a media container: {exc}") from exc
        c = self._container
        self._video = next(iter(c.streams.video), None)
        self._audio = next(iter(c.streams.audio), None)
        if self._video is None and self._audio is None:
            c.close()
            raise IngestError(NO_VIDEO, "no usable media: the file has neither video nor audio")
        streams = [s for s in (self._video, self._audio) if s is not None]
        for s in streams:
            s.thread_type = "SLICE"
        starts = [_seconds(s.start_time, s.time_base) for s in streams]
        self._origin = min((t for t in starts if t is not None), default=0.0)
        self.duration = self._probe_duration(streams)
        self._packets: Iterator[av.Packet] = c.demux(*streams)
        self._held: av.Packet | None = None
        self._exhausted = False
        self._next_tick = 0.0
        self._size: tuple[int, int] | None = None
        self._reformatter = VideoReformatter()
        self._v_last: float | None = None
        self._v_step: float | None = None
        self._resampler: av.AudioResampler | None = None
        self._a_out = 0
        self._warned = False

    def _probe_duration(self, streams) -> float:
        ends = []
        for s in streams:
            d = _seconds(s.duration, s.time_base)
            st = _seconds(s.start_time, s.time_base) or 0.0
            if d:
                ends.append(st + d - self._origin)
        if ends:
            return max(ends)
        if self._container.duration:
            return self._container.duration / 1_000_000
        return 0.0

    # -- the pipeline's interface ---------------------------------------------------------------
    @property
    def has_video(self) -> bool:
        return self._video is not None

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    @property
    def queued_until(self) -> float | None:
        return None if self._exhausted else self.duration

    def feed(self, data: bytes) -> None:
        raise RuntimeError("a container source holds the whole file already")

    def decode(self, until: float | None = None) -> DecodedMedia:
        with self._lock:
            return self._run(math.inf if until is None else until, flush=False)

    def finish(self) -> DecodedMedia:
        with self._lock:
            return self._run(math.inf, flush=True)

    def close(self) -> None:
        with self._lock:
            self._exhausted = True
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - closing must not fail
                pass

    # -- decoding -------------------------------------------------------------------------------
    def _run(self, limit: float, *, flush: bool) -> DecodedMedia:
        out = DecodedMedia(audio_start=self._a_out / self.sample_rate)
        if self._video is None and not self._warned:
            self._warned = True
            out.warnings.append(IngestError(NO_VIDEO, "the file has no video track; continuing audio-only",
                                            fatal=False))
        chunks: list[np.ndarray] = []
        try:
            while not self._exhausted:
                packet = self._held or next(self._packets, None)
                self._held = None
                if packet is None:
                    self._exhausted = True
                    break
                t = self._packet_time(packet)
                if t is not None and t >= limit:
                    self._held = packet
                    break
                self._decode_packet(packet, out, chunks)
            if flush and self._resampler is not None:
                self._resample(None, chunks)
        except IngestError:
            raise
        except _AV_ERRORS as exc:
            raise IngestError(MALFORMED_MEDIA, f"the file could not be decoded: {exc}") from exc
        if chunks:
            out.audio = np.concatenate(chunks)
        self._a_out += len(out.audio)
        if self._video is not None:
            last = self._v_last or 0.0
            out.video_until = last + (self._v_step or 0.0) if self._exhausted else last
        if self._audio is not None:
            out.audio_until = self._a_out / self.sample_rate
        return out

    def _packet_time(self, packet: av.Packet) -> float | None:
        ts = packet.dts if packet.dts is not None else packet.pts
        t = _seconds(ts, packet.time_base)
        return None if t is None else t - self._origin

    def _decode_packet(self, packet: av.Packet, out: DecodedMedia, chunks: list[np.ndarray]) -> None:
        for frame in packet.decode():
            if packet.stream is self._video:
                self._video_frame(frame, out)
            else:
                self._audio_frame(frame, chunks)

    def _video_frame(self, frame: av.VideoFrame, out: DecodedMedia) -> None:
        t = (frame.time if frame.time is not None else (self._v_last or 0.0) + (self._v_step or 0.0)) - self._origin
        if self._v_last is not None and t > self._v_last:
            self._v_step = t - self._v_last
        self._v_last = t if self._v_last is None else max(self._v_last, t)
        tol = 0.25 * min(1.0 / self.fps, self._v_step or math.inf)
        if t + tol < self._next_tick:
            return
        self._next_tick = (math.floor((t + tol) * self.fps) + 1) / self.fps
        if self._size is None:
            self._size = analysis_size(frame.width, frame.height, self.width, self.max_height)
        w, h = self._size
        out.frames.append((max(0.0, t), analysis_frame(self._reformatter, frame, w, h, self.pixel_format)))

    def _audio_frame(self, frame: av.AudioFrame, chunks: list[np.ndarray]) -> None:
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=self.sample_rate)
            lead = (frame.time - self._origin) if frame.time is not None else 0.0
            if lead > 0:
                chunks.append(np.zeros(int(round(lead * self.sample_rate)), np.float32))
        frame.pts = None
        self._resample(frame, chunks)

    def _resample(self, frame: av.AudioFrame | None, chunks: list[np.ndarray]) -> None:
        assert self._resampler is not None
        for res in self._resampler.resample(frame):
            planes = res.to_ndarray()
            mono = planes[0] if len(planes) == 1 else planes.mean(axis=0)
            chunks.append(np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False))
