"""Host-to-device staging of a batch's frames: one reused host buffer, bucketed batch shapes.

The GPU path's rules (issue 7) in one place:

- the host buffer is allocated once per (bucket, frame shape) and reused for every batch (pinned
  with ``pin_memory`` on CUDA: pinning per batch costs more than the copy);
- the copy runs on a dedicated copy stream, and the compute stream waits on an event recorded
  after it, so a batch's upload overlaps the previous batch's compute without racing it; the
  host buffer is reused only after the event of its last copy has completed;
- the number of frames is rounded up to a bucket (powers of two up to ``max_frames``) so the
  tensors a model sees take few shapes (what CUDA graph capture and cudnn autotuning need);
  the padding frames are zeros and :class:`Staged` says which rows are real.

On the CPU the same code stages into a plain reused buffer with no streams, so the CPU tests
exercise everything but the CUDA calls (those are in a ``gpu``-marked test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def bucket_size(n: int, max_frames: int) -> int:
    """The smallest power of two >= n (at least 1), capped at ``max_frames``."""
    if n > max_frames:
        raise ValueError(f"{n} frames exceed the staging capacity of {max_frames}")
    size = 1
    while size < n:
        size *= 2
    return min(size, max_frames)


@dataclass
class Staged:
    """A device tensor ``(bucket, H, W, C)`` uint8 and, per input array, the rows that hold it."""

    frames: torch.Tensor
    rows: list[slice]

    @property
    def used(self) -> int:
        return self.rows[-1].stop if self.rows else 0


class FrameStaging:
    def __init__(self, device: str | torch.device, max_frames: int = 1024) -> None:
        self.device = torch.device(device)
        self.max_frames = max_frames
        self.cuda = self.device.type == "cuda"
        self._host: dict[tuple, torch.Tensor] = {}
        self._done: dict[tuple, object] = {}  # host buffer -> CUDA event of its last copy
        self._copy_stream = torch.cuda.Stream(device=self.device) if self.cuda else None
        self.allocations = 0  # host buffers allocated so far (stays flat when buffers are reused)

    def _buffer(self, bucket: int, shape: tuple[int, ...]) -> tuple[tuple, torch.Tensor]:
        key = (bucket, *shape)
        buf = self._host.get(key)
        if buf is None:
            buf = torch.empty((bucket, *shape), dtype=torch.uint8, pin_memory=self.cuda)
            self._host[key] = buf
            self.allocations += 1
        elif self.cuda and key in self._done:
            self._done[key].synchronize()  # the previous copy out of this buffer has finished
        return key, buf

    def stage(self, arrays: list[np.ndarray]) -> Staged:
        """Pack ``arrays`` (each ``(T_i, H, W, C)`` uint8, same H, W, C) into one bucketed device tensor."""
        shapes = {a.shape[1:] for a in arrays if a.shape[0]}
        if len(shapes) > 1:
            raise ValueError(f"frames of different shapes cannot share a batch: {sorted(shapes)}")
        rows, at = [], 0
        for a in arrays:
            rows.append(slice(at, at + a.shape[0]))
            at += a.shape[0]
        if not shapes:
            return Staged(torch.zeros((0, 1, 1, 1), dtype=torch.uint8, device=self.device), rows)
        shape = shapes.pop()
        key, buf = self._buffer(bucket_size(at, self.max_frames), shape)
        host = buf.numpy()
        for a, r in zip(arrays, rows, strict=True):
            host[r] = a
        host[at:] = 0
        if not self.cuda:
            return Staged(buf.to(self.device, copy=True), rows)  # the buffer is refilled next batch
        with torch.cuda.stream(self._copy_stream):
            frames = buf.to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self._copy_stream)
        torch.cuda.current_stream(self.device).wait_event(event)
        frames.record_stream(torch.cuda.current_stream(self.device))  # freed only after compute used it
        self._done[key] = event
        return Staged(frames, rows)
