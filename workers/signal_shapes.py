"""Small helpers over 1-D measurement tracks, shared by the audio/motion and face cue code."""

from __future__ import annotations

import numpy as np


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where ``mask`` is True."""
    if mask.size == 0:
        return []
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[0::2].tolist(), d[1::2].tolist(), strict=True))


def reversal_hz(track: np.ndarray, rms: float, seconds: float) -> float | None:
    """Oscillation rate of ``track`` from sign reversals of its strong part (|x| >= rms/2); None if too few."""
    strong = track[np.abs(track) >= 0.5 * rms]
    if strong.size < 4:
        return None
    reversals = int(np.count_nonzero(np.diff(np.sign(strong)) != 0))
    return reversals / (2.0 * seconds)
