"""Real media for the worker tests: scripted WebM made by libvpx/libopus, decoded with PyAV."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest

from inter1srv.synthmedia import Script, default_script, encode_webm
from workers.contract import AUDIO_SAMPLE_RATE, WindowInput

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


def decode_webm(data: bytes, fps: int = FPS, width: int = WIDTH, height: int = HEIGHT):
    """Decode WebM to ``fps`` RGB frames of width x height and 16 kHz mono float32 audio."""
    import av

    frames, times, chunks = [], [], []
    audio_start = None
    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_SAMPLE_RATE)
    next_t = 0.0
    with av.open(io.BytesIO(data)) as container:
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    t = float(frame.time)
                    if t + 1e-6 >= next_t:
                        frames.append(frame.to_ndarray(format="rgb24", width=width, height=height))
                        times.append(t)
                        next_t = t + 1.0 / fps - 1e-3
                else:
                    if audio_start is None:
                        audio_start = max(0.0, float(frame.time or 0.0))
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return np.stack(frames), np.asarray(times, dtype=np.float64), audio, audio_start or 0.0


@pytest.fixture(scope="session")
def media() -> Media:
    script = default_script(40.0)
    # live=False: the plain file layout; the MediaRecorder rewrite (live=True) needs inter1srv.ingest,
    # which these tests must not depend on. PyAV decodes both the same.
    frames, times, audio, a0 = decode_webm(encode_webm(script, fps=FPS, live=False))
    return Media(script, frames, times, audio, a0)
