"""I420 rings (the default) against RGB rings in real servers: same session, same signals, half the memory."""

from __future__ import annotations

import pytest
from harness import detected_signals, serve_side_by_side

from perf.media import clip as face_clip

CONFIG = {"type": "session.configure", "include": ["conversation_quality", "feedback", "engagement"]}


@pytest.fixture(scope="module")
def face_webm() -> bytes:
    """20 s of 640x480 VP8 + Opus with a photographed face moving and speech: colour reaches the face model."""
    return face_clip(20.0, 640, 480, fps=20)


def test_i420_rings_serve_the_same_session_as_rgb_rings(fresh_server, face_webm):
    on_i420 = fresh_server()
    on_rgb = fresh_server(ring_pixel_format="rgb24")
    i420_record, rgb_record = serve_side_by_side([on_i420, on_rgb], face_webm, 20.0, CONFIG)
    i420, rgb = detected_signals(i420_record), detected_signals(rgb_record)
    assert i420, "the clip's face and speech must raise at least one signal"
    assert [s[:3] for s in i420] == [s[:3] for s in rgb]  # the same signals, moments and levels
    assert all(abs(a[3] - b[3]) <= 0.05 for a, b in zip(i420, rgb, strict=True)), (i420, rgb)
    assert {c["cue"] for e in i420_record.of("signal.detected") for c in e["data"]["cues"]} >= {"face_present"}
