"""Real media for the worker tests: scripted WebM made by libvpx/libopus, decoded with PyAV."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from inter1srv.synthmedia import Script, default_script, encode_webm
from workers.contract import AUDIO_SAMPLE_RATE, WindowInput
from workers.evaluation.corpus import decode_webm  # the same PyAV decode the evaluation uses

FPS = 10
WIDTH, HEIGHT = 320, 240


@dataclass
class Media:
    script: Script
    frames: np.ndarray  # (T, H, W, 3) uint8
    frame_times: np.ndarray  # (T,) seconds
    audio: np.ndarray  # (N,) float32 16 kHz mono
    audio_start: float

    def window(self, start: float, end: float, *, audio: bool = True, video: bool = True,
               job_id: str = "job") -> WindowInput:
        sel = (self.frame_times >= start) & (self.frame_times < end) if video else np.zeros(0, bool)
        frames = self.frames[sel] if video else np.zeros((0, HEIGHT, WIDTH, 3), np.uint8)
        times = self.frame_times[sel] if video else np.zeros(0)
        if audio:
            i0 = max(0, int(round((start - self.audio_start) * AUDIO_SAMPLE_RATE)))
            i1 = max(i0, int(round((end - self.audio_start) * AUDIO_SAMPLE_RATE)))
            samples = self.audio[i0:i1]
            a0 = self.audio_start + i0 / AUDIO_SAMPLE_RATE
        else:
            samples, a0 = np.zeros(0, np.float32), start
        return WindowInput(job_id, "session", start, end, frames, times, samples, a0)

    def segment_bounds(self, index: int) -> tuple[float, float]:
        s = self.script.start_of(index)
        return s, s + self.script.segments[index].seconds


@pytest.fixture(scope="session")
def media() -> Media:
    script = default_script(40.0)
    # live=False: the plain file layout; the MediaRecorder rewrite (live=True) needs inter1srv.ingest,
    # which these tests must not depend on. PyAV decodes both the same.
    frames, times, audio, a0 = decode_webm(encode_webm(script, fps=FPS, live=False))
    return Media(script, frames, times, audio, a0)
