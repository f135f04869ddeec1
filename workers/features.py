"""Batched low-level measurements in Torch (the heavy part of the baseline model).

Everything here works on stacked tensors on any device (``cpu`` or ``cuda``) and
returns small per-frame tensors; the episode logic that turns them into cues
lives in :mod:`workers.baseline`.

Audio (16 kHz mono float32), per 20 ms hop (``AUDIO_HOP`` samples):

- ``db``: RMS level of the 20 ms frame in dBFS (20·log10(rms); a full-scale
  square wave is 0 dBFS, a full-scale sine -3 dBFS);
- ``voicing``: peak of the normalised autocorrelation (Boersma 1993: the
  Hann-windowed frame's autocorrelation divided by the window's own) over the
  70-400 Hz lag range of a 40 ms frame centred on the hop; ~0.9 for voiced
  speech, ~0.2-0.4 for broadband noise;
- ``f0``: the pitch in Hz at that peak (first peak within 90 % of the best, to
  avoid octave-down errors; parabolic interpolation), meaningful where voiced;
- ``flux``: spectral flux, 1 - the cosine similarity of the frame's magnitude
  spectrum (0-4 kHz, the same Hann-windowed 40 ms frame) with the previous hop's;
  0 for a steady sound (a held vowel), ~0.1-0.3 across changing speech sounds;
  0 for the first hop.

Video (T, H, W, 3) uint8 RGB, reduced first to 80x60 luma (strided
subsampling to about 160x120, then 2x2 area average), per consecutive frame
pair:

- ``motion``: mean absolute grayscale difference (0-255 levels per pixel),
  scaled to a 0.1 s interval (10 fps);
- ``dx``/``dy``: the global translation of the moving region in pixels of the
  80x60 image (one Lucas-Kanade step restricted to the pixels that changed),
  scaled to a 0.1 s interval; used for the crude oscillation cues.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

AUDIO_SR = 16_000
AUDIO_HOP = 320  # 20 ms
PITCH_FRAME = 640  # 40 ms, centred on the hop
PITCH_NFFT = 1024  # >= PITCH_FRAME + max lag: linear (not circular) autocorrelation
F0_MIN, F0_MAX = 70.0, 400.0
LAG_MIN = int(math.floor(AUDIO_SR / F0_MAX))  # 40
LAG_MAX = int(math.ceil(AUDIO_SR / F0_MIN))  # 229
DB_FLOOR = -120.0
FLUX_BINS = int(4000.0 * PITCH_NFFT / AUDIO_SR) + 1  # 0-4 kHz

VIDEO_W, VIDEO_H = 80, 60
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # BT.601 R, G, B
MOTION_REF_DT = 0.1  # motion values are scaled to a 10 fps frame interval

_window_cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
_luma_cache: dict[str, torch.Tensor] = {}


def _pitch_window(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    key = (str(device), "hann")
    if key not in _window_cache:
        w = torch.hann_window(PITCH_FRAME, periodic=False, dtype=torch.float32, device=device)
        spec = torch.fft.rfft(w, n=PITCH_NFFT)
        rw = torch.fft.irfft(spec.real**2 + spec.imag**2, n=PITCH_NFFT)[: LAG_MAX + 2]
        _window_cache[key] = (w, rw / rw[0])
    return _window_cache[key]


def audio_features(audio: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-hop level, voicing and pitch for a batch of padded signals.

    ``audio``: (B, N) float32 on the target device. Returns (B, F) tensors with
    ``F = N // AUDIO_HOP``; hop ``f`` covers samples ``[f*HOP, (f+1)*HOP)``.
    """
    b, n = audio.shape
    n_hops = n // AUDIO_HOP
    device = audio.device
    if n_hops == 0:
        empty = torch.zeros((b, 0), dtype=torch.float32, device=device)
        return {"db": empty, "voicing": empty, "f0": empty, "flux": empty}
    x = audio[:, : n_hops * AUDIO_HOP]
    hops = x.reshape(b, n_hops, AUDIO_HOP)
    power = hops.pow(2).mean(dim=-1)
    db = (10.0 * torch.log10(power.clamp_min(1e-12))).clamp_min(DB_FLOOR)

    # 40 ms frames centred on each 20 ms hop
    pad = (PITCH_FRAME - AUDIO_HOP) // 2
    padded = F.pad(x, (pad, pad))
    frames = padded.unfold(1, PITCH_FRAME, AUDIO_HOP)  # (B, F, PITCH_FRAME)
    frames = frames - frames.mean(dim=-1, keepdim=True)
    window, rw = _pitch_window(device)
    spec = torch.fft.rfft(frames * window, n=PITCH_NFFT)
    power_spec = spec.real**2 + spec.imag**2
    ac = torch.fft.irfft(power_spec, n=PITCH_NFFT)[..., : LAG_MAX + 2]
    mag = power_spec[..., :FLUX_BINS].sqrt()
    mag = mag / mag.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    flux = F.pad(1.0 - (mag[:, 1:] * mag[:, :-1]).sum(dim=-1), (1, 0))
    r0 = ac[..., :1].clamp_min(1e-12)
    nac = (ac / r0) / rw.clamp_min(1e-6)  # Boersma-normalised autocorrelation
    lags = nac[..., LAG_MIN - 1 : LAG_MAX + 2]  # one lag of context each side
    centre = lags[..., 1:-1]
    is_peak = (centre >= lags[..., :-2]) & (centre >= lags[..., 2:])
    peaks = torch.where(is_peak, centre, torch.full_like(centre, -1.0))
    best = peaks.max(dim=-1).values
    voicing = best.clamp(0.0, 1.0)
    # first peak within 90 % of the best one: avoids picking a multiple of the period
    good = peaks >= (0.9 * best).unsqueeze(-1)
    idx = torch.argmax(good.to(torch.float32), dim=-1)  # first True (argmax returns the first maximum)
    y0 = lags.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    y1 = lags.gather(-1, (idx + 1).unsqueeze(-1)).squeeze(-1)
    y2 = lags.gather(-1, (idx + 2).unsqueeze(-1)).squeeze(-1)
    denom = y0 - 2.0 * y1 + y2
    delta = torch.where(denom.abs() > 1e-9, 0.5 * (y0 - y2) / denom, torch.zeros_like(denom)).clamp(-0.5, 0.5)
    lag = idx.to(torch.float32) + LAG_MIN + delta
    f0 = AUDIO_SR / lag
    return {"db": db, "voicing": voicing, "f0": f0, "flux": flux.clamp(0.0, 1.0)}


def gray_subsample(frames: np.ndarray) -> np.ndarray:
    """The strided view of ``(T, H, W, 3)`` frames at about twice 80x60 (``frames`` itself when no
    stride applies): the first step of every grey-frame path."""
    h, w = frames.shape[1], frames.shape[2]
    sy, sx = max(1, h // (2 * VIDEO_H)), max(1, w // (2 * VIDEO_W))
    return frames[:, ::sy, ::sx] if (sy > 1 or sx > 1) else frames


def to_gray_small(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (T, VIDEO_H, VIDEO_W) float32 luma (BT.601 weights).

    Frames are first point-subsampled (a strided view, no copy) to about twice
    the target size, which keeps the uint8->float work and any host->device
    copy 4x smaller, then area-averaged to 80x60 on ``device``.
    """
    t = frames.shape[0]
    if t == 0:
        return torch.zeros((0, VIDEO_H, VIDEO_W), dtype=torch.float32, device=device)
    view = gray_subsample(frames)
    if not view.flags.writeable:  # read-only shared-memory views: torch.from_numpy would warn
        view = np.array(view, copy=True)
    x = torch.from_numpy(view).to(device)
    gray = (x.to(torch.float32) @ _luma(device)).unsqueeze(1)  # (T, 1, h', w')
    gh, gw = gray.shape[-2], gray.shape[-1]
    if (gh, gw) != (VIDEO_H, VIDEO_W):
        if gh % VIDEO_H == 0 and gw % VIDEO_W == 0:
            gray = F.avg_pool2d(gray, (gh // VIDEO_H, gw // VIDEO_W))
        else:
            gray = F.interpolate(gray, size=(VIDEO_H, VIDEO_W), mode="area")
    return gray.squeeze(1)


def _luma(device: torch.device) -> torch.Tensor:
    key = str(device)
    if key not in _luma_cache:
        _luma_cache[key] = torch.tensor(LUMA_WEIGHTS, dtype=torch.float32, device=device)
    return _luma_cache[key]


def motion_features(gray: torch.Tensor, dt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-pair motion measures for padded grayscale stacks.

    ``gray``: (B, T, VIDEO_H, VIDEO_W) float32; ``dt``: (B, T-1) seconds between
    consecutive frames (non-positive where the pair does not exist). Returns
    (B, T-1) tensors ``motion``, ``dx``, ``dy``.
    """
    b, t = gray.shape[0], gray.shape[1]
    device = gray.device
    if t < 2:
        empty = torch.zeros((b, 0), dtype=torch.float32, device=device)
        return {"motion": empty, "dx": empty, "dy": empty}
    scale = torch.where(dt > 0, MOTION_REF_DT / dt.clamp_min(1e-3), torch.zeros_like(dt))
    g0, g1 = gray[:, :-1], gray[:, 1:]
    it = g1 - g0
    motion = it.abs().mean(dim=(-2, -1)) * scale
    # one global Lucas-Kanade step on a blurred half-resolution copy, over the pixels that changed
    blur0 = F.avg_pool2d(g0.reshape(-1, 1, VIDEO_H, VIDEO_W), 2).reshape(b, t - 1, VIDEO_H // 2, VIDEO_W // 2)
    blur1 = F.avg_pool2d(g1.reshape(-1, 1, VIDEO_H, VIDEO_W), 2).reshape(b, t - 1, VIDEO_H // 2, VIDEO_W // 2)
    avg = 0.5 * (blur0 + blur1)
    ix = 0.5 * (avg[..., 1:-1, 2:] - avg[..., 1:-1, :-2])
    iy = 0.5 * (avg[..., 2:, 1:-1] - avg[..., :-2, 1:-1])
    itc = (blur1 - blur0)[..., 1:-1, 1:-1]
    mask = (itc.abs() > 2.0).to(torch.float32)
    sxx = (ix * ix * mask).sum(dim=(-2, -1))
    syy = (iy * iy * mask).sum(dim=(-2, -1))
    sxy = (ix * iy * mask).sum(dim=(-2, -1))
    sxt = (ix * itc * mask).sum(dim=(-2, -1))
    syt = (iy * itc * mask).sum(dim=(-2, -1))
    det = sxx * syy - sxy * sxy
    ok = det > 1e-3
    det_safe = torch.where(ok, det, torch.ones_like(det))
    vx = torch.where(ok, -(syy * sxt - sxy * syt) / det_safe, torch.zeros_like(det))
    vy = torch.where(ok, -(sxx * syt - sxy * sxt) / det_safe, torch.zeros_like(det))
    # half-resolution pixels -> 80x60 pixels, per 0.1 s
    return {"motion": motion, "dx": 2.0 * vx * scale, "dy": 2.0 * vy * scale}
