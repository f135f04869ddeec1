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


def ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at or below ``lo`` (and where nan), 1 at or above ``hi``, linear in between."""
    return np.clip((np.nan_to_num(x, nan=lo) - lo) / (hi - lo), 0.0, 1.0)


def overlap(c, lo: float, hi: float) -> float:
    """Seconds of the cue (or any mapping with ``start`` / ``end``) ``c`` inside [lo, hi)."""
    return max(0.0, min(float(c["end"]), hi) - max(float(c["start"]), lo))


def raster(cues: list, name: str, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per context [lo, hi): the fraction covered by cues named ``name``, and their overlap-weighted
    mean value (nan where none)."""
    sel = [c for c in cues if c["cue"] == name]
    length = np.maximum(hi - lo, 1e-6)
    if not sel:
        return np.zeros_like(lo), np.full_like(lo, np.nan)
    cs = np.array([c["start"] for c in sel])
    ce = np.array([c["end"] for c in sel])
    val = np.array([c["value"] for c in sel])
    ov = np.clip(np.minimum(hi[:, None], ce[None, :]) - np.maximum(lo[:, None], cs[None, :]), 0.0, None)
    tot = ov.sum(axis=1)
    mean = np.where(tot > 0, (ov * val[None, :]).sum(axis=1) / np.maximum(tot, 1e-6), np.nan)
    return np.clip(tot / length, 0.0, 1.0), mean


def step_contexts(times: np.ndarray, start: float, end: float, length: float,
                  step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Contexts of ``length`` s centred on each step of ``step`` s, shifted (not cut) at the window's edges.

    The sequencer commits a window's newest steps, where a centred context would lose its
    future half: there the context becomes the window's last ``length`` seconds.
    """
    length = min(length, end - start)
    lo = np.clip(times + step / 2 - length / 2, start, end - length)
    return lo, lo + length
