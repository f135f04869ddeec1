"""Sans-I/O incremental WebM demuxer (the Matroska subset WebM uses).

:class:`WebmDemuxer` takes the client's byte stream in pieces split anywhere
(one byte, a MediaRecorder chunk, a whole file) and returns what became
complete: one :class:`TrackInfo` per track once ``Tracks`` is parsed, then one
:class:`Block` per coded frame.  No I/O, no PyAV, no threads.

The parser is a three-state machine over a byte buffer:

``HEADER``   read an element ID and size, decide what the element is;
``PAYLOAD``  wait until the whole payload of an element we need is buffered
             (EBML header, Info, Tracks, cluster Timecode, SimpleBlock,
             BlockGroup), then handle it;
``SKIP``     drop the payload of an element we ignore (Void, CRC-32,
             SeekHead, Cues, Tags, Chapters, Attachments, ...) as it arrives,
             never buffering it.

Segment and Cluster are the only masters it descends into; they may have a
known or an unknown size.  An unknown-size element ends where an element that
cannot be its child begins (a Cluster ends at the next Cluster, Cues, Tags,
...; the Segment at a second EBML header, which is an error here).  So the
memory held is at most one needed element's payload plus the caller's chunk.

Every malformation raises :class:`IngestError` with code ``ih5004``; after an
error the demuxer stays failed and re-raises it.  Times are seconds exactly
as written in the file: ``(cluster timecode + block offset) * TimecodeScale``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import MALFORMED_MEDIA, IngestError

# --- element IDs -----------------------------------------------------------
EBML = 0x1A45DFA3
EBML_READ_VERSION = 0x42F7
EBML_MAX_ID_LENGTH = 0x42F2
EBML_MAX_SIZE_LENGTH = 0x42F3
DOC_TYPE = 0x4282
VOID = 0xEC
CRC32 = 0xBF

SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
INFO = 0x1549A966
TIMECODE_SCALE = 0x2AD7B1
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_TYPE = 0x83
CODEC_ID = 0x86
CODEC_PRIVATE = 0x63A2
DEFAULT_DURATION = 0x23E383
CODEC_DELAY = 0x56AA
VIDEO = 0xE0
PIXEL_WIDTH = 0xB0
PIXEL_HEIGHT = 0xBA
AUDIO = 0xE1
SAMPLING_FREQUENCY = 0xB5
CHANNELS = 0x9F
CLUSTER = 0x1F43B675
TIMECODE = 0xE7
SILENT_TRACKS = 0x5854
POSITION = 0xA7
PREV_SIZE = 0xAB
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
BLOCK_DURATION = 0x9B
REFERENCE_BLOCK = 0xFB
CUES = 0x1C53BB6B
TAGS = 0x1254C367
CHAPTERS = 0x1043A770
ATTACHMENTS = 0x1941A469

GLOBAL_IDS = frozenset({VOID, CRC32})
SEGMENT_CHILDREN = frozenset({SEEK_HEAD, INFO, TRACKS, CLUSTER, CUES, TAGS, CHAPTERS, ATTACHMENTS})
CLUSTER_CHILDREN = frozenset({TIMECODE, SILENT_TRACKS, POSITION, PREV_SIZE, SIMPLE_BLOCK, BLOCK_GROUP})
# Block, BlockVirtual, BlockAdditions, BlockDuration, ReferencePriority, ReferenceBlock,
# ReferenceVirtual, CodecState, DiscardPadding, Slices, ReferenceFrame
BLOCK_GROUP_CHILDREN = frozenset(
    {BLOCK, 0xA2, 0x75A1, BLOCK_DURATION, 0xFA, REFERENCE_BLOCK, 0xFD, 0xA4, 0x75A2, 0x8E, 0xC8, VOID, CRC32}
)
NAMES = {
    EBML: "EBML header", SEGMENT: "Segment", SEEK_HEAD: "SeekHead", INFO: "Info", TRACKS: "Tracks",
    CLUSTER: "Cluster", CUES: "Cues", TAGS: "Tags", CHAPTERS: "Chapters", ATTACHMENTS: "Attachments",
    TIMECODE: "Timecode", SIMPLE_BLOCK: "SimpleBlock", BLOCK_GROUP: "BlockGroup", VOID: "Void",
    CRC32: "CRC-32",
}

UNKNOWN_SIZE = -1
DOC_TYPES = ("webm", "matroska")

_HEADER, _PAYLOAD, _SKIP = "header", "payload", "skip"
_SMALL = {CRC32: 4, POSITION: 8, PREV_SIZE: 8}  # skipped elements that are always tiny


@dataclass(frozen=True)
class TrackInfo:
    """A declared track.  ``kind`` is ``video``, ``audio`` or ``other``."""

    number: int
    kind: str
    codec_id: str
    codec_private: bytes = b""
    width: int | None = None
    height: int | None = None
    sample_rate: float | None = None
    channels: int | None = None
    default_duration: float | None = None  # seconds per frame, when declared
    codec_delay: float = 0.0  # seconds (Opus pre-skip), informative


@dataclass(frozen=True, slots=True)
class Block:
    """One coded frame.  ``time`` is in seconds, absolute as written in the file."""

    track: int
    time: float
    keyframe: bool
    data: bytes


def _fail(message: str) -> IngestError:
    return IngestError(MALFORMED_MEDIA, message)


def _name(eid: int) -> str:
    return NAMES.get(eid, f"element 0x{eid:X}")


# --- variable-length integers ------------------------------------------------
def vint_length(first: int) -> int:
    """Length in bytes of a vint from its first byte (0 for 0x00: invalid)."""
    return 8 - first.bit_length() + 1 if first else 0


def read_id(buf: bytes | bytearray, pos: int, end: int | None = None) -> tuple[int, int] | None:
    """Element ID at ``pos`` (marker bits kept) and its length; None if incomplete."""
    end = len(buf) if end is None else end
    if pos >= end:
        return None
    first = buf[pos]
    n = vint_length(first)
    if n == 0 or n > 4:
        raise _fail(f"invalid element ID byte 0x{first:02X} at byte {pos}")
    if pos + n > end:
        return None
    eid = int.from_bytes(buf[pos:pos + n], "big")
    value_mask = (1 << (7 * n)) - 1
    if eid & value_mask in (0, value_mask):
        raise _fail(f"reserved element ID 0x{eid:X}")
    return eid, n


def read_size(buf: bytes | bytearray, pos: int, end: int | None = None) -> tuple[int, int] | None:
    """Data-size vint at ``pos``: (value or UNKNOWN_SIZE, length); None if incomplete."""
    end = len(buf) if end is None else end
    if pos >= end:
        return None
    first = buf[pos]
    n = vint_length(first)
    if n == 0:
        raise _fail(f"invalid size vint byte 0x00 at byte {pos}")
    if pos + n > end:
        return None
    value = int.from_bytes(buf[pos:pos + n], "big") & ((1 << (7 * n)) - 1)
    if value == (1 << (7 * n)) - 1:
        value = UNKNOWN_SIZE
    return value, n


def children(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload end) of each child in a fully buffered master payload."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        got_id = read_id(data, pos, end)
        got_size = read_size(data, pos + got_id[1], end) if got_id else None
        if got_id is None or got_size is None:
            raise _fail("truncated child element header")
        eid, size = got_id[0], got_size[0]
        body = pos + got_id[1] + got_size[1]
        if size == UNKNOWN_SIZE or body + size > end:
            raise _fail(f"{_name(eid)} is larger than its parent")
        yield eid, body, body + size
        pos = body + size


def _track_codecs(tracks: dict[int, TrackInfo]) -> set[tuple[int, str, str]]:
    """What a repeated Tracks element must keep: numbers, kinds and codecs (not sizes)."""
    return {(t.number, t.kind, t.codec_id) for t in tracks.values()}


def _uint(data: bytes, a: int, b: int) -> int:
    if b - a > 8:
        raise _fail("integer element longer than 8 bytes")
    return int.from_bytes(data[a:b], "big")


def _float(data: bytes, a: int, b: int) -> float:
    if b - a == 4:
        return struct.unpack(">f", data[a:b])[0]
    if b - a == 8:
        return struct.unpack(">d", data[a:b])[0]
    if b == a:
        return 0.0
    raise _fail("float element must be 0, 4 or 8 bytes")


def _string(data: bytes, a: int, b: int) -> str:
    return data[a:b].rstrip(b"\0").decode("utf-8", "replace")


@dataclass
class _Open:
    """An open Segment or Cluster; ``end`` is an absolute stream offset, None = unknown size."""

    eid: int
    end: int | None


Item = TrackInfo | Block


class WebmDemuxer:
    """Incremental WebM demuxer: ``feed()`` bytes, get :class:`TrackInfo` / :class:`Block` items."""

    def __init__(
        self,
        *,
        max_block_size: int = 64 << 20,
        max_header_size: int = 1 << 20,
        max_element_size: int = 1 << 30,
    ) -> None:
        self.max_block_size = max_block_size
        self.max_header_size = max_header_size
        self.max_element_size = max_element_size  # skipped elements and known-size Clusters
        self._buf = bytearray()
        self._pos = 0  # parse position in _buf
        self._base = 0  # absolute stream offset of _buf[0]
        self._state = _HEADER
        self._stack: list[_Open] = []
        self._elem_id = 0  # element whose payload is awaited (PAYLOAD)
        self._elem_size = 0
        self._peeked = False  # the awaited SimpleBlock's track number was checked
        self._skip_left = 0  # SKIP: payload bytes still to drop
        self._seen_ebml = False
        self._seen_segment = False
        self._timecode_scale = 1_000_000
        self._tracks: dict[int, TrackInfo] | None = None
        self._cluster_time: int | None = None
        self._error: IngestError | None = None
        self._ended = False
        self.doc_type: str | None = None
        self.truncated = False  # set by end(): the stream stopped inside an element
        self.truncation: str | None = None  # what was cut off, when truncated

    # --- public -------------------------------------------------------------
    @property
    def tracks(self) -> dict[int, TrackInfo] | None:
        """Declared tracks by number, None until Tracks is parsed."""
        return self._tracks

    @property
    def timecode_scale(self) -> int:
        return self._timecode_scale

    @property
    def offset(self) -> int:
        """Absolute stream offset up to which bytes have been parsed."""
        return self._base + self._pos

    @property
    def buffered(self) -> int:
        """Bytes received but not parsed yet (held in memory)."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> list[Item]:
        """Parse as much as possible; keep the unparsed remainder for the next call."""
        if self._error is not None:
            raise self._error
        if self._ended:
            raise RuntimeError("feed() after end()")
        out: list[Item] = []
        view = memoryview(data).cast("B")
        if self._state == _SKIP and self._pos == len(self._buf):
            # drop skipped payload straight from the caller's chunk, no copy
            n = min(self._skip_left, len(view))
            self._skip_left -= n
            self._base += n + len(self._buf)
            self._buf.clear()
            self._pos = 0
            view = view[n:]
            if self._skip_left == 0:
                self._state = _HEADER
        self._buf += view
        try:
            self._run(out)
        except IngestError as exc:
            self._error = exc
            self._buf = bytearray()
            self._pos = 0
            raise
        if self._pos:
            del self._buf[:self._pos]
            self._base += self._pos
            self._pos = 0
        return out

    def end(self) -> list[Item]:
        """End of stream.  Sets :attr:`truncated` if it stopped inside an element."""
        if self._error is not None:
            raise self._error
        self._ended = True
        self._close_finished()
        where = self._base + self._pos
        if self._state == _PAYLOAD:
            got = len(self._buf) - self._pos
            self._truncate(f"{_name(self._elem_id)} cut off after {got} of {self._elem_size} bytes")
        elif self._state == _SKIP:
            self._truncate(f"skipped element cut off, {self._skip_left} bytes missing")
        elif self._pos < len(self._buf):
            self._truncate(f"element header cut off at byte {where}")
        else:
            for open_ in self._stack:
                if open_.end is not None and open_.end > where:
                    self._truncate(f"{_name(open_.eid)} cut off, {open_.end - where} bytes missing")
                    break
        return []

    # --- state machine ------------------------------------------------------
    def _truncate(self, why: str) -> None:
        self.truncated = True
        self.truncation = why

    def _run(self, out: list[Item]) -> None:
        while True:
            if self._state == _HEADER:
                if not self._read_header():
                    return
            elif self._state == _PAYLOAD:
                stop = self._pos + self._elem_size
                if len(self._buf) < stop:
                    if not self._peeked and self._elem_id in (SIMPLE_BLOCK, BLOCK_GROUP):
                        self._peek_block()  # reject garbage early, not after buffering its "payload"
                    return
                payload = bytes(self._buf[self._pos:stop])
                self._pos = stop
                self._state = _HEADER
                self._handle(self._elem_id, payload, out)
            else:  # _SKIP
                n = min(self._skip_left, len(self._buf) - self._pos)
                self._pos += n
                self._skip_left -= n
                if self._skip_left:
                    return
                self._state = _HEADER

    def _close_finished(self) -> None:
        """Close every open element whose known size has been consumed (and all inside it)."""
        where = self._base + self._pos
        for i, open_ in enumerate(self._stack):
            if open_.end is not None and open_.end <= where:
                del self._stack[i:]
                return

    def _read_header(self) -> bool:
        self._close_finished()
        buf, pos = self._buf, self._pos
        if not self._seen_ebml and pos < len(buf) and buf[pos] != 0x1A:
            raise _fail("not a WebM stream: it does not start with an EBML header")
        got_id = read_id(buf, pos)
        if got_id is None:
            return False
        got_size = read_size(buf, pos + got_id[1])
        if got_size is None:
            return False
        eid, size = got_id[0], got_size[0]
        self._pos = pos + got_id[1] + got_size[1]
        self._place(eid, size)
        return True

    def _contains(self, parent: int, eid: int) -> bool:
        """Can ``eid`` be a child of the open ``parent``?  (Ends unknown-size elements.)"""
        if eid in GLOBAL_IDS:
            return True
        if parent == CLUSTER:
            return eid in CLUSTER_CHILDREN
        return eid not in (EBML, SEGMENT)  # Segment: anything but a new stream

    def _place(self, eid: int, size: int) -> None:
        """Decide what to do with the element whose header was just read."""
        while self._stack and self._stack[-1].end is None and not self._contains(self._stack[-1].eid, eid):
            self._stack.pop()
        parent = self._stack[-1].eid if self._stack else None
        self._check_position(parent, eid)
        if size == UNKNOWN_SIZE:
            if eid not in (SEGMENT, CLUSTER):
                raise _fail(f"{_name(eid)} has an unknown size (only Segment and Cluster may)")
        else:
            start = self._base + self._pos
            bound = next((o.end for o in reversed(self._stack) if o.end is not None), None)
            if bound is not None and start + size > bound:
                raise _fail(f"{_name(eid)} of {size} bytes is larger than its parent")
        if eid == SEGMENT:
            self._seen_segment = True
            self._stack.append(_Open(SEGMENT, None if size == UNKNOWN_SIZE else self._base + self._pos + size))
        elif eid == CLUSTER:
            if size != UNKNOWN_SIZE and size > self.max_element_size:
                raise _fail(f"Cluster of {size} bytes is absurdly large")
            self._cluster_time = None
            self._stack.append(_Open(CLUSTER, None if size == UNKNOWN_SIZE else self._base + self._pos + size))
        elif eid in (EBML, INFO, TRACKS):
            self._expect(eid, size, self.max_header_size)
        elif eid == TIMECODE:
            self._expect(eid, size, 8)
        elif eid in (SIMPLE_BLOCK, BLOCK_GROUP):
            self._expect(eid, size, self.max_block_size)
        else:
            limit = self.max_element_size
            if eid in _SMALL:
                limit = _SMALL[eid]
            elif parent == CLUSTER:  # Void, SilentTracks inside a Cluster
                limit = self.max_header_size
            if size > limit:
                raise _fail(f"{_name(eid)} of {size} bytes is absurdly large")
            self._skip_left = size
            self._state = _SKIP

    def _check_position(self, parent: int | None, eid: int) -> None:
        if parent is None:
            if eid == EBML:
                if self._seen_ebml:
                    raise _fail("a second EBML header mid-stream (a new recording?)")
                self._seen_ebml = True
            elif eid == SEGMENT:
                if self._seen_segment:
                    raise _fail("a second Segment")
            elif eid not in GLOBAL_IDS or not self._seen_ebml:
                raise _fail(f"unexpected {_name(eid)} at top level (garbage bytes?)")
        elif parent == SEGMENT:
            if eid not in SEGMENT_CHILDREN and eid not in GLOBAL_IDS:
                raise _fail(f"unexpected {_name(eid)} in Segment (garbage bytes?)")
        elif parent == CLUSTER and eid not in CLUSTER_CHILDREN and eid not in GLOBAL_IDS:
            raise _fail(f"unexpected {_name(eid)} in Cluster (garbage bytes?)")

    def _expect(self, eid: int, size: int, limit: int) -> None:
        if size > limit:
            raise _fail(f"{_name(eid)} of {size} bytes exceeds the limit of {limit}")
        self._elem_id = eid
        self._elem_size = size
        self._peeked = False
        self._state = _PAYLOAD

    def _peek_block(self) -> None:
        """Check the start of a block that is still arriving: a declared track / a BlockGroup child."""
        if self._elem_id == BLOCK_GROUP:
            got = read_id(self._buf, self._pos)
            if got is not None:
                self._peeked = True
                if got[0] not in BLOCK_GROUP_CHILDREN:
                    raise _fail(f"unexpected {_name(got[0])} in BlockGroup (garbage bytes?)")
            return
        got = read_size(self._buf, self._pos)
        if got is not None:
            self._peeked = True
            if self._tracks is None or got[0] not in self._tracks:
                raise _fail(f"block for undeclared track {got[0]}")

    # --- element handlers ---------------------------------------------------
    def _handle(self, eid: int, data: bytes, out: list[Item]) -> None:
        if eid == EBML:
            self._parse_ebml_header(data)
        elif eid == INFO:
            for cid, a, b in children(data):
                if cid == TIMECODE_SCALE:
                    self._timecode_scale = _uint(data, a, b)
                    if self._timecode_scale <= 0:
                        raise _fail("TimecodeScale is 0")
        elif eid == TRACKS:
            tracks = self._parse_tracks(data)
            if self._tracks is None:
                self._tracks = tracks
                out.extend(tracks.values())
            elif _track_codecs(tracks) != _track_codecs(self._tracks):
                raise _fail("the tracks changed mid-stream (a codec change): start a new session for the new stream")
        elif eid == TIMECODE:
            self._cluster_time = _uint(data, 0, len(data))
        elif eid == SIMPLE_BLOCK:
            self._parse_block(data, 0, len(data), None, None, out)
        elif eid == BLOCK_GROUP:
            self._parse_block_group(data, out)

    def _parse_ebml_header(self, data: bytes) -> None:
        doc_type = "matroska"  # the EBML default
        for cid, a, b in children(data):
            if cid == DOC_TYPE:
                doc_type = _string(data, a, b)
            elif cid == EBML_READ_VERSION and _uint(data, a, b) > 1:
                raise _fail("unsupported EBMLReadVersion")
            elif cid == EBML_MAX_ID_LENGTH and _uint(data, a, b) > 4:
                raise _fail("unsupported EBMLMaxIDLength")
            elif cid == EBML_MAX_SIZE_LENGTH and _uint(data, a, b) > 8:
                raise _fail("unsupported EBMLMaxSizeLength")
        if doc_type not in DOC_TYPES:
            raise _fail(f"DocType {doc_type!r} is neither webm nor matroska")
        self.doc_type = doc_type

    def _parse_tracks(self, data: bytes) -> dict[int, TrackInfo]:
        tracks: dict[int, TrackInfo] = {}
        for cid, a, b in children(data):
            if cid != TRACK_ENTRY:
                continue
            f: dict = {"codec_private": b""}
            number = track_type = 0
            codec_id = ""
            for eid, c, d in children(data, a, b):
                if eid == TRACK_NUMBER:
                    number = _uint(data, c, d)
                elif eid == TRACK_TYPE:
                    track_type = _uint(data, c, d)
                elif eid == CODEC_ID:
                    codec_id = _string(data, c, d)
                elif eid == CODEC_PRIVATE:
                    f["codec_private"] = bytes(data[c:d])
                elif eid == DEFAULT_DURATION:
                    f["default_duration"] = _uint(data, c, d) / 1e9 or None
                elif eid == CODEC_DELAY:
                    f["codec_delay"] = _uint(data, c, d) / 1e9
                elif eid == VIDEO:
                    for vid, g, h in children(data, c, d):
                        if vid == PIXEL_WIDTH:
                            f["width"] = _uint(data, g, h)
                        elif vid == PIXEL_HEIGHT:
                            f["height"] = _uint(data, g, h)
                elif eid == AUDIO:
                    f["sample_rate"], f["channels"] = 8000.0, 1  # Matroska defaults
                    for aid, g, h in children(data, c, d):
                        if aid == SAMPLING_FREQUENCY:
                            f["sample_rate"] = _float(data, g, h)
                        elif aid == CHANNELS:
                            f["channels"] = _uint(data, g, h)
            if number == 0:
                raise _fail("TrackEntry without a TrackNumber")
            if number in tracks:
                raise _fail(f"track number {number} declared twice")
            if track_type == 0:  # absent: guess from the codec
                track_type = 1 if codec_id.startswith("V_") else 2 if codec_id.startswith("A_") else 0
            kind = {1: "video", 2: "audio"}.get(track_type, "other")
            tracks[number] = TrackInfo(number=number, kind=kind, codec_id=codec_id, **f)
        return tracks

    def _parse_block_group(self, data: bytes, out: list[Item]) -> None:
        block: tuple[int, int] | None = None
        keyframe = True
        duration: int | None = None
        for cid, a, b in children(data):
            if cid == BLOCK:
                block = (a, b)
            elif cid == REFERENCE_BLOCK:
                keyframe = False
            elif cid == BLOCK_DURATION:
                duration = _uint(data, a, b)
        if block is None:
            raise _fail("BlockGroup without a Block")
        self._parse_block(data, block[0], block[1], keyframe, duration, out)

    def _parse_block(
        self, data: bytes, a: int, b: int, keyframe: bool | None, duration: int | None, out: list[Item]
    ) -> None:
        got = read_size(data, a, b)
        if got is None or got[0] == UNKNOWN_SIZE or a + got[1] + 3 > b:
            raise _fail("truncated block header")
        number, pos = got[0], a + got[1]
        track = self._tracks.get(number) if self._tracks is not None else None
        if track is None:
            raise _fail(f"block for undeclared track {number}")
        if self._cluster_time is None:
            raise _fail("block before its Cluster's Timecode")
        rel = int.from_bytes(data[pos:pos + 2], "big", signed=True)
        flags = data[pos + 2]
        pos += 3
        scale = self._timecode_scale
        time = (self._cluster_time + rel) * scale / 1e9
        if keyframe is None:
            keyframe = bool(flags & 0x80)
        sizes, pos = _lace_sizes((flags >> 1) & 3, data, pos, b)
        step = 0.0
        if track.default_duration:
            step = track.default_duration
        elif duration:
            step = duration * scale / 1e9 / len(sizes)
        for i, size in enumerate(sizes):
            out.append(Block(number, time + i * step, keyframe, bytes(data[pos:pos + size])))
            pos += size


def _lace_sizes(lacing: int, data: bytes, pos: int, end: int) -> tuple[list[int], int]:
    """Frame sizes of a block payload at ``pos`` and where the frames start.

    ``lacing``: 0 none, 1 Xiph, 2 fixed-size, 3 EBML.
    """
    if lacing == 0:
        return [end - pos], pos
    if pos >= end:
        raise _fail("laced block without a frame count")
    count = data[pos] + 1
    pos += 1
    sizes: list[int] = []
    if lacing == 1:  # Xiph: each size as a run of 255s plus a final byte
        for _ in range(count - 1):
            size = 0
            while True:
                if pos >= end:
                    raise _fail("truncated Xiph lacing")
                byte = data[pos]
                pos += 1
                size += byte
                if byte != 255:
                    break
            sizes.append(size)
    elif lacing == 3:  # EBML: first size, then signed differences
        got = read_size(data, pos, end)
        if got is None or got[0] == UNKNOWN_SIZE:
            raise _fail("bad EBML lacing")
        sizes.append(got[0])
        pos += got[1]
        for _ in range(count - 2):
            got = read_size(data, pos, end)
            if got is None:
                raise _fail("truncated EBML lacing")
            raw = int.from_bytes(data[pos:pos + got[1]], "big") & ((1 << (7 * got[1])) - 1)
            pos += got[1]
            sizes.append(sizes[-1] + raw - ((1 << (7 * got[1] - 1)) - 1))
    else:  # fixed
        if (end - pos) % count:
            raise _fail("fixed-size lacing does not divide the block evenly")
        return [(end - pos) // count] * count, pos
    last = end - pos - sum(sizes)
    if last < 0 or any(s < 0 for s in sizes):
        raise _fail("laced frame sizes exceed the block")
    return sizes + [last], pos
