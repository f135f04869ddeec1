"""I420 rings (the default) against RGB rings in real servers: same session, same signals, half the memory."""

from __future__ import annotations

import asyncio

import pytest
from harness import assert_well_formed, chunks_of, stream_session

from perf.media import clip as face_clip

CONFIG = {"type": "session.configure", "include": ["conversation_quality", "feedback", "engagement"]}


@pytest.fixture(scope="module")
def face_webm() -> bytes:
    """20 s of 640x480 VP8 + Opus with a photographed face moving and speech: colour reaches the face model."""
    return face_clip(20.0, 640, 480, fps=20)


def _signals(record) -> list[tuple]:
    return [(e["data"]["signal_type"], e["data"]["start"], e["data"]["probability"], e["data"]["probability_score"])
            for e in record.of("signal.detected")]


def test_i420_rings_serve_the_same_session_as_rgb_rings(fresh_server, face_webm):
    on_i420 = fresh_server()
    on_rgb = fresh_server(ring_pixel_format="rgb24")

    async def both():
        return await asyncio.gather(*(stream_session(srv.url, srv.key, chunks_of(face_webm, 64 * 1024), config=CONFIG)
                                      for srv in (on_i420, on_rgb)))

    i420_record, rgb_record = asyncio.run(both())
    for record, srv in ((i420_record, on_i420), (rgb_record, on_rgb)):
        assert record.close_code == 1000, (record.events[-3:], srv.log_tail())
        assert_well_formed(record)
        ended = record.ended["data"]
        assert ended["dropped_ranges"] == [] and abs(ended["billed_seconds"] - 20.0) < 0.2, ended
        assert '"level":"error"' not in srv.log_tail(400)
    i420, rgb = _signals(i420_record), _signals(rgb_record)
    assert i420, "the clip's face and speech must raise at least one signal"
    assert [s[:3] for s in i420] == [s[:3] for s in rgb]  # the same signals, moments and levels
    assert all(abs(a[3] - b[3]) <= 0.05 for a, b in zip(i420, rgb, strict=True)), (i420, rgb)
    assert {c["cue"] for e in i420_record.of("signal.detected") for c in e["data"]["cues"]} >= {"face_present"}
