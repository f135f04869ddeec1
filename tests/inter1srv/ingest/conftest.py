"""Real WebM clips (libvpx + libopus via PyAV), encoded once per test session."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from inter1srv.ingest.decode import DecodedMedia, MediaDecoder
from inter1srv.synthmedia import Script, default_script, encode_webm, recorder_layout

MAIN_SECONDS = 24.0  # default_script: speech 0-8, hesitant 8-14, silence 14-21, speech 21-24
MAIN_FPS = 20


@dataclass(frozen=True)
class Clips:
    script: Script
    ffmpeg: bytes  # ffmpeg layout: known sizes, SeekHead, Cues, Tags
    live: bytes  # MediaRecorder layout of the same encode
    vp9: bytes
    video_only: bytes
    audio_only: bytes
    vga: bytes  # 640x480 video only, 1 s
    qqvga: bytes  # 160x120 video only, 1 s


@pytest.fixture(scope="session")
def clips() -> Clips:
    script = default_script(MAIN_SECONDS)
    ffmpeg = encode_webm(script, fps=MAIN_FPS, live=False)
    short = default_script(3.0)
    return Clips(
        script=script,
        ffmpeg=ffmpeg,
        live=recorder_layout(ffmpeg),
        vp9=encode_webm(default_script(4.0), video_codec="libvpx-vp9"),
        video_only=encode_webm(short, audio=False),
        audio_only=encode_webm(default_script(10.0), video=False),
        vga=encode_webm(default_script(1.0), width=640, height=480, audio=False),
        qqvga=encode_webm(default_script(1.0), width=160, height=120, audio=False),
    )


@pytest.fixture(scope="session")
def decoded_live(clips: Clips) -> DecodedMedia:
    with MediaDecoder() as decoder:
        decoder.feed(clips.live)
        return decoder.finish()
