"""The worker's media path through NVIDIA DALI (``INTER1SRV_MEDIA=dali``): ring frames -> grey frames.

What runs in DALI: the reduction of a window's frames (``(T, H, W, 3)`` uint8 RGB from a session's
ring: 320 pixels wide, 320x240 from a 4:3 camera, 320x180 from a 16:9 one) to the 80x60 luma frames
of the motion cues, with the same arithmetic as :func:`workers.features.to_gray_small`: the strided
subsample on the host (a view: at most half the rows and columns are copied), BT.601 luma
(``fn.coord_transform``), then the box average over whole blocks (``fn.reshape`` into blocks,
``fn.reductions.mean``), where torch takes ``avg_pool2d``. Wherever the subsample is a whole multiple
of 80x60 (every 320-wide 4:3 or 16:9 ring, and 640x480, 1280x720, 1920x1080 frames) the two agree to
float rounding (within 1e-4 of a grey level, tested); other sizes take DALI's antialiased linear
resize where torch takes an area average (a fraction of a grey level on average, tested).

On a CUDA worker the pipeline runs on the worker's GPU and DALI copies the frames to the device
itself; on a CPU worker it runs DALI's CPU operators (``device_id=None``), so CI tests the same
pipeline without a GPU. The per-session grey-frame cache (:mod:`workers.session_cache`) sits in
front of either path.

Why this is not the default (``python -m perf.bench_media``, perf/REPORT.md "DALI"): on this CPU
DALI's grey frames cost 1.7-2.1x torch's, its CPU video decoder 2.2-2.4x PyAV's, and importing it
adds ~67 MB resident per worker, so the CPU path keeps torch and PyAV. On a GPU its worth is
unmeasured: no lent GPU host could carry the ~200 MB DALI wheel. NVDEC decode through
``fn.decoders.video`` is not wired in: it needs the stream from a keyframe, and a browser's
MediaRecorder puts one only every 100 frames (3.3 s at 30 fps), so decoding whole GOPs would add up
to 3.3 s of event lag (target: 1 s).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .features import LUMA_WEIGHTS, VIDEO_H, VIDEO_W, gray_subsample, to_gray_small

MEDIA_ENV = "INTER1SRV_MEDIA"
MEDIA_BACKENDS = ("torch", "dali")
DALI_INSTALL_HINT = "pip install nvidia-dali-cuda130 (CUDA 13 drivers) or nvidia-dali-cuda120 (CUDA 12)"


def media_backend(spec: str | None = None) -> str:
    """The media backend ``spec`` names (default ``$INTER1SRV_MEDIA``, else ``torch``)."""
    name = (spec or os.environ.get(MEDIA_ENV) or "torch").strip().lower()
    if name not in MEDIA_BACKENDS:
        raise ValueError(f"{MEDIA_ENV}={name!r}: expected one of {', '.join(MEDIA_BACKENDS)}")
    return name


class TorchGray:
    """The default path: :func:`workers.features.to_gray_small` on the model's device."""

    backend = "torch"

    def __init__(self, device: str | torch.device) -> None:
        self.device = torch.device(device)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        return to_gray_small(frames, self.device)


class DaliGray:
    """80x60 luma frames through a DALI pipeline on the worker's device (see the module docstring).

    One pipeline per instance, built once; a call runs it synchronously on at most ``max_frames``
    frames at a time (DALI fixes the largest batch when it builds a pipeline). Not thread-safe:
    a worker runs its model in one thread.
    """

    backend = "dali"

    def __init__(self, device: str | torch.device, *, max_frames: int = 256, threads: int = 1) -> None:
        try:
            from nvidia.dali import fn, pipeline_def, types
            from nvidia.dali.plugin.pytorch import feed_ndarray
        except ImportError as exc:
            raise RuntimeError(f"{MEDIA_ENV}=dali needs NVIDIA DALI: {DALI_INSTALL_HINT}") from exc
        self.device = torch.device(device)
        self.max_frames, self.threads = max_frames, threads
        self._feed_ndarray = feed_ndarray
        self._dali = (fn, pipeline_def, types)
        self._pipes: dict[tuple[int, int] | None, object] = {}  # box factors (None: resize) -> pipeline
        self._pipeline((2, 2))  # 320x240 ring frames, built now: a broken install fails at start

    def _pipeline(self, box: tuple[int, int] | None):
        """The pipeline averaging ``box`` = (rows, columns) blocks, or resizing (``None``), built on first use."""
        pipe = self._pipes.get(box)
        if pipe is not None:
            return pipe
        fn, pipeline_def, types = self._dali
        gpu = self.device.type == "cuda"
        device_id = (self.device.index if self.device.index is not None else torch.cuda.current_device()) if gpu else None

        @pipeline_def(batch_size=self.max_frames, num_threads=self.threads, device_id=device_id,
                      exec_pipelined=False, exec_async=False, prefetch_queue_depth=1)
        def gray_pipeline():
            frames = fn.external_source(name="frames", dtype=types.UINT8, layout="HWC", device="cpu")
            if gpu:
                frames = frames.gpu()
            luma = fn.coord_transform(frames, M=list(LUMA_WEIGHTS), dtype=types.FLOAT)  # (h, w, 1)
            if box is None:  # not a whole multiple of 80x60: antialiased linear, close to torch's area
                return fn.resize(luma, size=(VIDEO_H, VIDEO_W), interp_type=types.INTERP_LINEAR,
                                 antialias=True, dtype=types.FLOAT)
            blocks = fn.reshape(luma, shape=[VIDEO_H, box[0], VIDEO_W, box[1]], layout="")
            return fn.reductions.mean(blocks, axes=[1, 3])  # the box average, as torch's avg_pool2d

        pipe = gray_pipeline()
        pipe.build()
        self._pipes[box] = pipe
        return pipe

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """``(T, H, W, 3)`` uint8 RGB -> ``(T, 60, 80)`` float32 on the device."""
        t = frames.shape[0]
        out = torch.empty((t, VIDEO_H, VIDEO_W), dtype=torch.float32, device=self.device)
        if t == 0:
            return out
        view = np.ascontiguousarray(gray_subsample(frames))  # the same subsample as to_gray_small
        gh, gw = view.shape[1], view.shape[2]
        whole = gh % VIDEO_H == 0 and gw % VIDEO_W == 0
        pipe = self._pipeline((gh // VIDEO_H, gw // VIDEO_W) if whole else None)
        stream = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None
        for a in range(0, t, self.max_frames):
            part = view[a : a + self.max_frames]
            pipe.feed_input("frames", part)
            (gray,) = pipe.run()
            rows = out[a : a + part.shape[0]]
            self._feed_ndarray(gray.as_tensor(), rows if whole else rows.unsqueeze(-1), cuda_stream=stream)
            if stream is not None:
                stream.synchronize()  # the next run() reuses DALI's output buffer: the copy must be done
        return out


def make_gray(spec: str | None, device: str | torch.device) -> TorchGray | DaliGray:
    """The grey-frame reducer of the media backend ``spec`` names (see :func:`media_backend`)."""
    return DaliGray(device) if media_backend(spec) == "dali" else TorchGray(device)
