"""A session's media path on the frontend: WebM bytes in, analysis media into the session's ring.

Runs in a thread-pool thread (never on the event loop); one call at a time per
session, so the ring keeps a single writer. The ring (tens of MB of reserved
shared memory) is created when the first decoded media is written, not when the
session opens, so connections that never send media cost next to nothing.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Protocol

from inter1srv.config import ServerConfig
from inter1srv.ingest.decode import DecodedMedia, MediaDecoder
from inter1srv.ingest.errors import IngestError
from shm.media_ring import MediaRing
from shm.segment import segment_name

TRACK_LAG_TOLERANCE_S = 3.0  # a modality lagging more than this is treated as missing


class MediaSource(Protocol):
    """What the pipeline needs of a decoder: :class:`MediaDecoder` (WebM) or a container source."""

    has_video: bool
    has_audio: bool
    queued_until: float | None
    truncated: str | None

    def feed(self, data: bytes) -> None: ...
    def decode(self, until: float | None = None) -> DecodedMedia: ...
    def finish(self) -> DecodedMedia: ...
    def close(self) -> None: ...


def new_decoder(cfg: ServerConfig) -> MediaDecoder:
    return MediaDecoder(fps=cfg.analysis_fps, width=cfg.analysis_width, max_height=cfg.analysis_max_height,
                        pixel_format=cfg.ring_pixel_format)


@dataclass
class PumpResult:
    until: float  # media time available to analysis (both present modalities)
    backlog: bool  # undecoded media is waiting for the analysis frontier to move
    warnings: list[IngestError] = field(default_factory=list)


class MediaPipeline:
    def __init__(self, cfg: ServerConfig, server_prefix: str, session_id: str, decoder: MediaSource | None = None):
        self.cfg = cfg
        self.decoder: MediaSource = decoder or new_decoder(cfg)
        self._ring_name = segment_name(server_prefix, session_id)
        self.ring: MediaRing | None = None  # created at the first write (see module docstring)
        self.video_until = 0.0
        self.audio_until = 0.0
        self.finished = False
        self._lock = threading.Lock()  # feed/pump/finish/close never overlap, even after a cancelled await

    @property
    def ring_name(self) -> str:
        """The ring's segment name, known (and announced to the sequencer) before the ring exists."""
        return self._ring_name

    def _ring(self) -> MediaRing:
        if self.ring is None:
            self.ring = MediaRing.create(
                self._ring_name,
                video_slots=math.ceil(self.cfg.ring_seconds * self.cfg.analysis_fps) + 4,
                max_width=self.cfg.analysis_width,
                max_height=self.cfg.analysis_max_height,
                audio_seconds=self.cfg.ring_seconds,
                pixel_format=self.cfg.ring_pixel_format,
            )
        return self.ring

    def feed(self, data: bytes) -> None:
        """Demux now (cheap); decoding waits for :meth:`pump`. Raises IngestError."""
        with self._lock:
            self.decoder.feed(data)

    def pump(self, limit: float) -> PumpResult:
        """Decode queued media up to media time ``limit`` and write it into the ring."""
        with self._lock:
            out = self.decoder.decode(until=limit)
            self._write(out)
        backlog = self.decoder.queued_until is not None and self.decoder.queued_until > limit
        return PumpResult(self.until(), backlog, list(out.warnings))

    def finish(self) -> PumpResult:
        """End of stream: flush the decoders (call once nothing is queued beyond the limit)."""
        with self._lock:
            out = self.decoder.finish()
            self._write(out)
            self.finished = True
            if self.ring is not None:
                self.ring.mark_ended()
        return PumpResult(self.until(final=True), False, list(out.warnings))

    def _write(self, out: DecodedMedia) -> None:
        if out.frames or len(out.audio):
            ring = self._ring()
            for t, frame in out.frames:
                ring.write_frame(t, frame)
            if len(out.audio):
                ring.write_audio(out.audio)
        self.video_until = max(self.video_until, out.video_until or 0.0)
        self.audio_until = max(self.audio_until, out.audio_until or 0.0)

    def until(self, final: bool = False) -> float:
        present = []
        if self.decoder.has_video:
            present.append(self.video_until)
        if self.decoder.has_audio:
            present.append(self.audio_until)
        if not present:
            return 0.0
        if final or max(present) - min(present) > TRACK_LAG_TOLERANCE_S:
            return max(present)
        return min(present)

    def close(self) -> None:
        """Release the decoders and unlink the ring (the frontend created it, so it unlinks it)."""
        with self._lock:
            self.decoder.close()
            if self.ring is None:
                return
            try:
                self.ring.unlink()
            except FileNotFoundError:
                pass
            self.ring.close()
