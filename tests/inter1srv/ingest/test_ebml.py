"""WebmDemuxer on real WebM: any split gives the same blocks; malformed input raises ih5004."""

from __future__ import annotations

import io
import random

import av
import pytest

from inter1srv.ingest.ebml import Block, TrackInfo, WebmDemuxer
from inter1srv.ingest.errors import IngestError
from inter1srv.synthmedia import (
    MuxTrack,
    block_payload,
    ebml_element,
    ebml_id,
    ebml_size,
    mux_webm,
    recorder_layout,
)

SEGMENT_ID = bytes.fromhex("18538067")
CLUSTER_ID = bytes.fromhex("1F43B675")
CUES_ID = bytes.fromhex("1C53BB6B")
SEEKHEAD_ID = bytes.fromhex("114D9B74")
UNKNOWN = bytes.fromhex("01FFFFFFFFFFFFFF")


def pieces(data: bytes, split) -> list[bytes]:
    if split == "whole":
        return [data]
    if split == "random":
        rng = random.Random(1234)
        out, i = [], 0
        while i < len(data):
            n = rng.choice([1, 2, 3, 7, 50, 999, 4096, 30000])
            out.append(data[i:i + n])
            i += n
        return out
    return [data[i:i + split] for i in range(0, len(data), split)]


def demux(chunks: list[bytes]) -> tuple[list[TrackInfo], list[Block], WebmDemuxer]:
    demuxer = WebmDemuxer()
    items = []
    for chunk in chunks:
        items += demuxer.feed(chunk)
    items += demuxer.end()
    return (
        [x for x in items if isinstance(x, TrackInfo)],
        [x for x in items if isinstance(x, Block)],
        demuxer,
    )


def raises_5004(data: bytes, step: int | None = None) -> IngestError:
    demuxer = WebmDemuxer()
    step = step or len(data)
    with pytest.raises(IngestError) as info:
        for i in range(0, len(data), step):
            demuxer.feed(data[i:i + step])
        demuxer.end()
    assert info.value.code == "ih5004"
    # the demuxer stays failed
    with pytest.raises(IngestError):
        demuxer.feed(b"\x00")
    return info.value


@pytest.fixture(scope="module")
def reference(clips):
    """Blocks of the ffmpeg-layout clip fed whole."""
    infos, blocks, demuxer = demux([clips.ffmpeg])
    assert not demuxer.truncated
    return infos, blocks


# --- real files ---------------------------------------------------------------
def test_tracks_of_a_real_file(reference):
    infos, blocks = reference
    video, audio = infos
    assert (video.number, video.kind, video.codec_id, video.width, video.height) == (1, "video", "V_VP8", 320, 240)
    assert (audio.kind, audio.codec_id, audio.sample_rate, audio.channels) == ("audio", "A_OPUS", 48000.0, 1)
    assert audio.codec_private.startswith(b"OpusHead")
    assert abs(audio.codec_delay - 0.0065) < 1e-9
    assert blocks[0].keyframe and blocks[0].time == 0.0


def test_blocks_match_pyav(clips, reference):
    _, blocks = reference
    container = av.open(io.BytesIO(clips.ffmpeg))
    packets = [p for p in container.demux() if p.size]
    assert len(packets) == len(blocks)
    for packet, block in zip(packets, blocks, strict=True):
        assert block.track == packet.stream.index + 1
        assert block.data == bytes(packet)
        assert block.keyframe == packet.is_keyframe
        # ffmpeg subtracts Opus' CodecDelay (6.5 ms) from audio timestamps; we keep the file's
        delay = 0.0065 if packet.stream.type == "audio" else 0.0
        assert abs(block.time - delay - float(packet.pts * packet.time_base)) < 0.0011


def test_video_keyframes_every_100_frames(reference):
    _, blocks = reference
    video = [b for b in blocks if b.track == 1]
    assert [i for i, b in enumerate(video) if b.keyframe] == list(range(0, len(video), 100))
    times = [b.time for b in video]
    assert times == sorted(times) and abs(times[1] - times[0] - 0.05) < 1e-9


@pytest.mark.parametrize("layout", ["ffmpeg", "live"])
@pytest.mark.parametrize("split", [1, 1000, 65536, "random", "whole"])
def test_same_blocks_whatever_the_split(clips, reference, layout, split):
    data = clips.ffmpeg if layout == "ffmpeg" else clips.live
    infos, blocks, demuxer = demux(pieces(data, split))
    assert infos == reference[0]
    assert blocks == reference[1]
    assert not demuxer.truncated


def test_mediarecorder_like_chunks(clips, reference):
    """First chunk: header, Info, Tracks and the start of a Cluster; then pieces split mid-ID."""
    data = clips.live
    first_cluster = data.index(CLUSTER_ID)
    cuts = [first_cluster + 20]
    cluster_starts = [i for i in range(len(data)) if data.startswith(CLUSTER_ID, i)]
    cuts += [c + 2 for c in cluster_starts[1:]]  # inside the Cluster ID
    cuts += list(range(cuts[0] + 997, len(data), 10_007))
    cuts = sorted(set(cuts))
    chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)], strict=True)]
    assert chunks[0].startswith(b"\x1a\x45\xdf\xa3")
    _, blocks, _ = demux(chunks)
    assert blocks == reference[1]


def test_recorder_layout(clips):
    live = clips.live
    seg = live.index(SEGMENT_ID)
    assert live[seg + 4:seg + 12] == UNKNOWN
    assert CUES_ID not in live and SEEKHEAD_ID not in live
    assert CUES_ID in clips.ffmpeg and SEEKHEAD_ID in clips.ffmpeg
    starts = [i for i in range(len(live)) if live.startswith(CLUSTER_ID, i)]
    assert len(starts) >= 2 and all(live[i + 4:i + 12] == UNKNOWN for i in starts)
    assert recorder_layout(live) == live  # idempotent
    # PyAV still decodes the rewritten bytes, frame for frame
    counts = []
    for data in (clips.ffmpeg, live):
        container = av.open(io.BytesIO(data))
        counts.append(sum(1 for _ in container.decode(video=0)))
    assert counts[0] == counts[1] == 24 * 20


def test_bounded_memory_when_skipping(clips):
    """A huge Void is dropped as it arrives; only the needed element is ever buffered."""
    void = ebml_id(0xEC) + ebml_size(8 << 20) + bytes(8 << 20)
    data = clips.live
    first_cluster = data.index(CLUSTER_ID)
    data = data[:first_cluster] + void + data[first_cluster:]
    demuxer = WebmDemuxer()
    blocks, peak = 0, 0
    for chunk in pieces(data, 65536):
        blocks += sum(isinstance(x, Block) for x in demuxer.feed(chunk))
        peak = max(peak, demuxer.buffered)
    assert peak < 65536
    _, reference_blocks, _ = demux([clips.live])
    assert blocks == len(reference_blocks)


def test_truncated_stream_is_flagged(clips):
    data = clips.live
    _, blocks, demuxer = demux([data[:-3]])
    assert demuxer.truncated and "Block" in demuxer.truncation
    _, _, demuxer = demux([data[:30]])  # inside the EBML header
    assert demuxer.truncated
    _, _, demuxer = demux([clips.ffmpeg[:-5]])  # inside the (skipped) Cues
    assert demuxer.truncated
    _, _, demuxer = demux([data])
    assert not demuxer.truncated and demuxer.truncation is None


# --- hand-built streams ---------------------------------------------------------
def _header(doc_type: str = "webm") -> bytes:
    return ebml_element(0x1A45DFA3, ebml_element(0x4282, doc_type) + ebml_element(0x4287, 4))


def _tracks(*entries: bytes) -> bytes:
    return ebml_element(0x1654AE6B, b"".join(entries))


def _audio_entry(number: int, default_duration_ns: int = 0) -> bytes:
    fields = ebml_element(0xD7, number) + ebml_element(0x83, 2) + ebml_element(0x86, "A_OPUS")
    if default_duration_ns:
        fields += ebml_element(0x23E383, default_duration_ns)
    return ebml_element(0xAE, fields)


def _stream(*cluster_children: bytes, entries: tuple[bytes, ...] = (), timecode: int = 1000) -> bytes:
    entries = entries or (_audio_entry(1),)
    cluster = ebml_id(0x1F43B675) + UNKNOWN + ebml_element(0xE7, timecode) + b"".join(cluster_children)
    return _header() + SEGMENT_ID + UNKNOWN + _tracks(*entries) + cluster


@pytest.mark.parametrize("lacing", ["xiph", "ebml", "fixed"])
def test_laced_simple_blocks(lacing):
    if lacing == "fixed":
        frames = [bytes([i]) * 40 for i in range(4)]
    else:
        frames = [bytes([1]) * 3, bytes([2]) * 300, bytes([3]) * 255, bytes([4]) * 0, bytes([5]) * 70]
    laced = ebml_element(0xA3, block_payload(1, 20, 0x80, frames, lacing))
    data = _stream(laced, ebml_element(0xA3, block_payload(1, 40, 0x80, [b"tail"])))
    for split in (1, "whole"):
        _, blocks, _ = demux(pieces(data, split))
        assert [b.data for b in blocks] == frames + [b"tail"]
        assert all(b.track == 1 and b.keyframe for b in blocks)
        assert [b.time for b in blocks] == [1.02] * len(frames) + [1.04]


def test_laced_frames_spaced_by_default_duration():
    frames = [b"a" * 10, b"b" * 20, b"c" * 30]
    data = _stream(
        ebml_element(0xA3, block_payload(1, 0, 0x80, frames, "xiph")),
        entries=(_audio_entry(1, default_duration_ns=20_000_000),),
    )
    _, blocks, _ = demux([data])
    assert [b.data for b in blocks] == frames
    assert [round(b.time, 9) for b in blocks] == [1.0, 1.02, 1.04]


def test_block_groups():
    key = ebml_element(0xA0, ebml_element(0xA1, block_payload(1, 0, 0, [b"key"])) + ebml_element(0x9B, 20))
    inter = ebml_element(0xA0, ebml_element(0xA1, block_payload(1, 20, 0, [b"i1", b"i2"], "ebml"))
                         + ebml_element(0xFB, 1) + ebml_element(0x9B, 40))
    data = _stream(key, ebml_element(0xBF, b"\0\0\0\0"), ebml_element(0xEC, bytes(10)), inter)
    _, blocks, _ = demux([data])
    assert [(b.data, b.keyframe, round(b.time, 9)) for b in blocks] == [
        (b"key", True, 1.0), (b"i1", False, 1.02), (b"i2", False, 1.04)]


def test_known_size_cluster_and_trailing_elements():
    """Known-size Segment/Clusters, Cues and Tags after them, all skipped."""
    blocks = [Block(1, t / 10, True, bytes([t]) * 5) for t in range(30)]
    extra = ebml_element(0x1C53BB6B, bytes(50)) + ebml_element(0x1254C367, bytes(20))  # Cues, Tags
    for live in (True, False):
        data = mux_webm([MuxTrack(1, "audio", "A_OPUS")], blocks, live=live) + extra
        if not live:  # keep them inside the known-size Segment: grow its size
            seg = data.index(SEGMENT_ID) + 4
            n = 8 - data[seg].bit_length() + 1
            old = int.from_bytes(data[seg:seg + n], "big") & ((1 << (7 * n)) - 1)
            data = data[:seg] + ebml_size(old + len(extra)) + data[seg + n:]
        for split in (1, "whole"):
            _, got, demuxer = demux(pieces(data, split))
            assert got == blocks and not demuxer.truncated


def test_matroska_doctype_is_accepted():
    data = _header("matroska") + SEGMENT_ID + UNKNOWN + _tracks(_audio_entry(1))
    infos, _, _ = demux([data])
    assert infos[0].codec_id == "A_OPUS"


# --- errors ---------------------------------------------------------------------
def test_garbage_bytes(clips):
    raises_5004(random.Random(5).randbytes(4000))
    raises_5004(b"GET / HTTP/1.1\r\n\r\n", step=1)
    raises_5004(b"\x00\x00\x00\x18ftypisom")  # MP4
    # garbage in the middle of an unknown-size Cluster
    data = clips.live
    mid = data.index(CLUSTER_ID, data.index(CLUSTER_ID) + 4)
    for seed in range(20):
        junk = random.Random(seed).randbytes(512)
        raises_5004(data[:mid] + junk + data[mid:], step=4096)


def test_wrong_doctype():
    err = raises_5004(_header("mkv3d") + SEGMENT_ID + UNKNOWN)
    assert "DocType" in err.message


def test_truncated_header():
    header = _header()
    # the EBML header claims fewer bytes than its children need
    raises_5004(ebml_id(0x1A45DFA3) + ebml_size(3) + header[5:])
    # a child element of Tracks cut short
    entry = _audio_entry(1)
    raises_5004(header + SEGMENT_ID + UNKNOWN + ebml_id(0x1654AE6B) + ebml_size(len(entry) - 2) + entry[:-2])


def test_invalid_vint():
    raises_5004(_header() + SEGMENT_ID + b"\x00\x01")  # size vint 0x00
    raises_5004(_header() + SEGMENT_ID + UNKNOWN + b"\x05\x81\x00")  # ID longer than 4 bytes


@pytest.mark.parametrize("case", ["void", "tracks", "block", "child_of_known"])
def test_absurd_element_size(case):
    start = _header() + SEGMENT_ID + UNKNOWN
    if case == "void":
        data = start + ebml_id(0xEC) + ebml_size(1 << 50)
    elif case == "tracks":
        data = start + ebml_id(0x1654AE6B) + ebml_size(100 << 20)
    elif case == "block":
        data = _stream() + ebml_id(0xA3) + ebml_size(1 << 40)
    else:  # larger than its known-size parent
        data = _header() + SEGMENT_ID + ebml_size(100) + ebml_id(0x1549A966) + ebml_size(200)
    err = raises_5004(data, step=1)
    assert "large" in err.message or "limit" in err.message


def _blocks_then_error(data: bytes, split) -> tuple[int, IngestError]:
    """Blocks the demuxer delivered before it refused ``data`` (fed in ``split`` pieces), and the error."""
    demuxer = WebmDemuxer()
    blocks = 0
    with pytest.raises(IngestError) as info:
        for chunk in pieces(data, split):
            blocks += sum(isinstance(x, Block) for x in demuxer.feed(chunk))
    return blocks, info.value


def test_second_ebml_header(clips):
    blocks, err = _blocks_then_error(clips.live + clips.live, 4096)
    assert err.code == "ih5004" and "second EBML header" in err.message
    assert blocks > 0.9 * len(demux([clips.live])[1])
    raises_5004(clips.ffmpeg + clips.ffmpeg)  # after a known-size Segment too


TRACKS_ID = bytes.fromhex("1654AE6B")


def test_mid_stream_codec_change_is_refused(clips):
    """VP8 clusters, then a new Tracks element declaring VP9 and VP9 clusters (no new EBML header)."""
    blocks, err = _blocks_then_error(clips.live + clips.vp9[clips.vp9.index(TRACKS_ID):], 1000)
    assert err.code == "ih5004" and "codec change" in err.message
    assert blocks > 0.99 * len(demux([clips.live])[1]), "the VP8 blocks before the change are delivered"


def test_repeated_identical_tracks_are_accepted(clips):
    start = clips.live.index(TRACKS_ID)
    end = clips.live.index(CLUSTER_ID, start)
    first_cluster_end = clips.live.index(CLUSTER_ID, end + 4)
    # Tracks again between two clusters, unchanged: harmless
    data = clips.live[:first_cluster_end] + clips.live[start:end] + clips.live[first_cluster_end:]
    assert len(demux([data])[1]) == len(demux([clips.live])[1])


def test_block_for_unknown_track():
    err = raises_5004(_stream(ebml_element(0xA3, block_payload(7, 0, 0x80, [b"x"]))))
    assert "track 7" in err.message


def test_block_before_tracks():
    cluster = ebml_id(0x1F43B675) + UNKNOWN + ebml_element(0xE7, 0) + ebml_element(0xA3, block_payload(1, 0, 0x80, [b"x"]))
    raises_5004(_header() + SEGMENT_ID + UNKNOWN + cluster)


def test_bad_lacing():
    frames = [b"a" * 10, b"b" * 11]
    payload = bytearray(block_payload(1, 0, 0x80, frames, "xiph"))
    payload[5] = 200  # first frame size larger than the block
    raises_5004(_stream(ebml_element(0xA3, bytes(payload))))
    odd = block_payload(1, 0, 0x80 | 0b100, [bytes([1]) + b"x" * 7])  # fixed lacing, 2 frames of 7 bytes
    raises_5004(_stream(ebml_element(0xA3, odd)))
