"""Recorder-sized chunks: cut at block boundaries every ~0.3 s of media, nothing lost or reordered."""

import pytest

from inter1srv.client.chunker import even_chunks, webm_chunks
from inter1srv.ingest.ebml import Block, WebmDemuxer
from inter1srv.synthmedia import default_script, encode_webm


@pytest.fixture(scope="module")
def clip() -> bytes:
    return encode_webm(default_script(6.0), width=160, height=120, fps=15)


def _blocks(data: bytes) -> list[tuple[int, float]]:
    d = WebmDemuxer()
    items = d.feed(data) + d.end()
    return [(b.track, b.time) for b in items if isinstance(b, Block)]


@pytest.mark.parametrize("live", [True, False])
def test_chunks_rejoin_to_the_file_and_advance_about_0_3_s(live):
    data = encode_webm(default_script(6.0), width=160, height=120, fps=15, live=live)
    chunks = webm_chunks(data, 0.3)
    assert b"".join(c.data for c in chunks) == data
    times = [c.media_time for c in chunks]
    assert times == sorted(times)
    assert 5.9 <= times[-1] <= 6.2
    steps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    assert 0.15 <= steps[len(steps) // 2] <= 0.6  # median chunk ~0.3 s of media
    assert 10 <= len(chunks) <= 40


def test_every_chunk_completes_the_blocks_up_to_its_media_time(clip):
    chunks = webm_chunks(clip, 0.3)
    d = WebmDemuxer()
    first = None
    for chunk in chunks[:-1]:
        times = [b.time for b in d.feed(chunk.data) if isinstance(b, Block)]
        if times:
            first = times[0] if first is None else first
            assert max(times) - first == pytest.approx(chunk.media_time, abs=0.06)
    assert _blocks(b"".join(c.data for c in chunks)) == _blocks(clip)


def test_every_chunk_ends_on_a_whole_block():
    data = encode_webm(default_script(3.0), width=160, height=120, fps=10)  # MediaRecorder layout
    chunks = webm_chunks(data, 0.3)
    d = WebmDemuxer()
    for chunk in chunks[:-1]:
        d.feed(chunk.data)
        assert d.buffered == 0  # nothing half-received after a chunk
        prefix = WebmDemuxer()
        prefix.feed(data[: data.index(chunk.data) + len(chunk.data)])
        prefix.end()
        assert not prefix.truncated  # stopping after any chunk leaves a complete stream


def test_larger_chunk_seconds_give_fewer_chunks(clip):
    assert len(webm_chunks(clip, 1.0)) < len(webm_chunks(clip, 0.3))


def test_unreadable_bytes_fall_back_to_an_even_split():
    data = bytes(range(256)) * 100
    chunks = webm_chunks(data, 0.5, duration=5.0)
    assert b"".join(c.data for c in chunks) == data
    assert len(chunks) == 10 and chunks[-1].media_time == 5.0 and chunks[0].media_time == pytest.approx(0.5, abs=0.01)


def test_even_chunks_edge_cases():
    assert even_chunks(b"", 3.0) == []
    one = even_chunks(b"abc", 0.0)
    assert len(one) == 1 and one[0].data == b"abc" and one[0].media_time == 0.0
