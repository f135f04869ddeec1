"""Hostile-input cases for the WebM ingest, shared by the CI fuzz test and ``perf/fuzz_ingest.py``.

Each case mutates a real WebM stream (byte flips, cuts, inserted junk, absurd
element sizes, a second EBML header, zero-length and giant lacing) and runs
it through the same demux + decode path as a live session. The only allowed
failure is an :class:`IngestError` with a protocol code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .decode import MediaDecoder
from .errors import IngestError

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
CLUSTER_ID = b"\x1f\x43\xb6\x75"
SIMPLEBLOCK_ID = b"\xa3"


@dataclass
class Outcome:
    mutation: str
    error_code: str | None  # None: the stream was accepted (possibly with less media)


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random hostile variant of ``data``."""
    kind = rng.choice(["flip", "cut", "insert", "absurd_size", "second_header", "zero_block", "lacing", "splice"])
    buf = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == "cut":
        buf = buf[: rng.randrange(1, len(buf))]
    elif kind == "insert":
        at = rng.randrange(len(buf))
        buf[at:at] = rng.randbytes(rng.randint(1, 64))
    elif kind == "absurd_size":
        at = _find(buf, rng, CLUSTER_ID, SIMPLEBLOCK_ID)
        size_at = at + (4 if buf[at:at + 4] == CLUSTER_ID else 1)
        buf[size_at:size_at + 1] = b"\x01\x7f\xff\xff\xff\xff\xff\xfe"  # ~2^56 bytes
    elif kind == "second_header":
        at = _find(buf, rng, CLUSTER_ID)
        buf[at:at] = data[:64]
    elif kind == "zero_block":
        at = _find(buf, rng, CLUSTER_ID)
        buf[at + 4:at + 4] = SIMPLEBLOCK_ID + b"\x80"  # a SimpleBlock with no payload at all
    elif kind == "lacing":
        at = _find(buf, rng, SIMPLEBLOCK_ID)
        # Xiph lacing flag with an enormous frame count and sizes that overrun the block
        buf[at:at] = SIMPLEBLOCK_ID + b"\x88" + b"\x81\x00\x00\x02\xff" + b"\xff" * 6
    else:  # splice two distant parts (a mid-stream jump or codec-state break)
        a, b = sorted(rng.sample(range(len(buf)), 2))
        buf = buf[:a] + buf[b:]
    return kind, bytes(buf)


def _find(buf: bytearray, rng: random.Random, *needles: bytes) -> int:
    positions = [i for needle in needles for i in _all(buf, needle)]
    return rng.choice(positions) if positions else rng.randrange(len(buf))


def _all(buf: bytearray, needle: bytes) -> list[int]:
    out, i = [], buf.find(needle)
    while i >= 0 and len(out) < 512:
        out.append(i)
        i = buf.find(needle, i + 1)
    return out


def run_case(data: bytes, rng: random.Random, *, chunk: int = 4096, decode: bool = True) -> Outcome:
    """Feed a hostile variant in chunks like a session would; any non-IngestError escapes (a bug)."""
    kind, hostile = mutate(data, rng)
    decoder = MediaDecoder(fps=10, width=160, max_height=120)
    try:
        for i in range(0, len(hostile), chunk):
            decoder.feed(hostile[i:i + chunk])
            if decode:
                decoder.decode(until=None)
        if decode:
            decoder.finish()
        return Outcome(kind, None)
    except IngestError as exc:
        assert exc.code in ("ih5001", "ih5004"), exc.code
        return Outcome(kind, exc.code)
    finally:
        decoder.close()
