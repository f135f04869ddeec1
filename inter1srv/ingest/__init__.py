"""Media ingest: the client's WebM byte stream in, analysis frames and 16 kHz audio out.

- :mod:`.ebml`: :class:`WebmDemuxer`, a sans-I/O incremental WebM demuxer
  (bytes split anywhere in, :class:`TrackInfo` / :class:`Block` out; no PyAV);
- :mod:`.decode`: :class:`MediaDecoder` (PyAV codecs; run ``decode`` in a thread);
- :mod:`.errors`: :class:`IngestError` with protocol codes ``ih5004`` / ``ih5001``.

Importing the package does not import PyAV; the decode names load on first use.
"""

from __future__ import annotations

from typing import Any

from .ebml import Block, TrackInfo, WebmDemuxer
from .errors import MALFORMED_MEDIA, NO_VIDEO, IngestError

__all__ = [
    "MALFORMED_MEDIA",
    "NO_VIDEO",
    "Block",
    "DecodedMedia",
    "IngestError",
    "MediaDecoder",
    "TrackInfo",
    "WebmDemuxer",
    "analysis_size",
]


def __getattr__(name: str) -> Any:
    if name in ("DecodedMedia", "MediaDecoder", "analysis_size"):
        from . import decode

        return getattr(decode, name)
    raise AttributeError(name)
