"""Ring frames to the RGB frames the model takes.

The frontend writes analysis frames into the rings as planar I420 (``yuv420p``: 1.5 bytes a
pixel, half of RGB's 3), so a session's ring takes half the shared memory; a worker turns a
window's frames into RGB as it reads them. The conversion is OpenCV's BT.601 limited-range
I420 to RGB (what swscale assumes for untagged VP8), ~0.07 ms a 320x240 frame on one core.
Its chroma is the 4:2:0 planes upsampled, so colours differ from swscale's direct RGB by about
1.5 levels on average (``tests/workers/test_pixels.py``); luma, which the motion cues read,
is the same picture.
"""

from __future__ import annotations

import cv2
import numpy as np

from shm.media_ring import frame_size_of


def to_rgb(frames: np.ndarray, pixel_format: str) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 RGB from ring frames ``(T, *frame array shape)`` in ``pixel_format``."""
    if pixel_format == "rgb24":
        frame_size_of(pixel_format, frames.shape[1:])  # ValueError if they are not RGB frames
        return frames
    h, w = frame_size_of(pixel_format, frames.shape[1:])
    out = np.empty((frames.shape[0], h, w, 3), np.uint8)
    for i, frame in enumerate(frames):  # cv2 converts one frame a call, into out's row i
        cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_YUV2RGB_I420, dst=out[i])
    return out
