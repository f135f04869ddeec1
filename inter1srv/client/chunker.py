"""Split a WebM file into recorder-sized chunks with the media time each one completes.

A MediaRecorder hands over a chunk every few hundred milliseconds, ending on a
whole block; to replay a file like a live recorder we cut it at the end of the
block where ~``chunk_seconds`` more media has been written (block times from
the cluster timecodes), and send each chunk once its media time has passed on
the wall clock.  So a stream interrupted after any chunk is still a valid,
complete WebM prefix.  A file this scan cannot read is split evenly by size
over its duration instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from inter1srv.ingest.ebml import (
    BLOCK,
    BLOCK_GROUP,
    CLUSTER,
    INFO,
    SEGMENT,
    SIMPLE_BLOCK,
    TIMECODE,
    TIMECODE_SCALE,
    UNKNOWN_SIZE,
    children,
    read_id,
    read_size,
    vint_length,
)
from inter1srv.ingest.errors import IngestError

CHUNK_SECONDS = 0.3


@dataclass(frozen=True)
class Chunk:
    """Bytes to send and ``media_time``: seconds of media (from the first block) they complete."""

    data: bytes
    media_time: float


def block_ends(data: bytes) -> list[tuple[int, float]]:
    """(byte offset just past each block, its time in seconds), in file order; stops at a truncation."""
    out: list[tuple[int, float]] = []
    pos, scale, cluster = 0, 1_000_000, 0
    while pos < len(data):
        got_id = read_id(data, pos)
        got_size = read_size(data, pos + got_id[1]) if got_id else None
        if got_id is None or got_size is None:
            break
        eid, size = got_id[0], got_size[0]
        body = pos + got_id[1] + got_size[1]
        if eid in (SEGMENT, CLUSTER):  # masters: walk into them, known size or not
            pos = body
            continue
        if size == UNKNOWN_SIZE or body + size > len(data):
            break
        if eid == INFO:
            scale = next((int.from_bytes(data[a:b], "big") for c, a, b in children(data, body, body + size)
                          if c == TIMECODE_SCALE), scale)
        elif eid == TIMECODE:
            cluster = int.from_bytes(data[body:body + size], "big")
        elif eid in (SIMPLE_BLOCK, BLOCK_GROUP):
            start = body
            if eid == BLOCK_GROUP:
                start = next((a for c, a, _ in children(data, body, body + size) if c == BLOCK), None)
            if start is not None:
                head = start + vint_length(data[start])
                rel = int.from_bytes(data[head:head + 2], "big", signed=True)
                out.append((body + size, (cluster + rel) * scale / 1e9))
        pos = body + size
    return out


def webm_chunks(data: bytes, chunk_seconds: float = CHUNK_SECONDS, duration: float | None = None) -> list[Chunk]:
    """Cut ``data`` at block ends every ``chunk_seconds`` of media (falls back to :func:`even_chunks`)."""
    try:
        ends = block_ends(data)
    except (IngestError, IndexError):
        ends = []
    if not ends:
        return even_chunks(data, duration or 0.0, chunk_seconds)
    first = min(t for _, t in ends[:16])
    chunks: list[Chunk] = []
    cut, latest = 0, 0.0
    for offset, t in ends:
        latest = max(latest, t - first)
        if latest >= (len(chunks) + 1) * chunk_seconds:
            chunks.append(Chunk(data[cut:offset], round(latest, 3)))
            cut = offset
    if cut < len(data):
        chunks.append(Chunk(data[cut:], round(latest, 3)))
    return chunks


def even_chunks(data: bytes, duration: float, chunk_seconds: float = CHUNK_SECONDS) -> list[Chunk]:
    """``data`` split by size, as if ``duration`` seconds of media were spread evenly over it."""
    if not data:
        return []
    n = max(1, round(duration / chunk_seconds)) if duration > 0 else max(1, len(data) // 65536)
    size = -(-len(data) // n)
    return [
        Chunk(data[pos:pos + size], round(max(0.0, duration) * min(len(data), pos + size) / len(data), 3))
        for pos in range(0, len(data), size)
    ]
