"""Shared memory for inter1srv: POSIX segments and the per-session media ring.

numpy and the standard library only (no torch, no asyncio).
"""

from .media_ring import Lapped, MediaRing, RingFormatError
from .segment import (
    ROOT,
    Segment,
    list_segments,
    make_server_prefix,
    parse_segment_name,
    pid_alive,
    segment_name,
    sweep_creator,
    sweep_stale,
    unlink_segment,
)

__all__ = [
    "ROOT",
    "Lapped",
    "MediaRing",
    "RingFormatError",
    "Segment",
    "list_segments",
    "make_server_prefix",
    "parse_segment_name",
    "pid_alive",
    "segment_name",
    "sweep_creator",
    "sweep_stale",
    "unlink_segment",
]
