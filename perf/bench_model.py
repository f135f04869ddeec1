"""Model and decode cost per media second, measured side by side in one run.

    python -m perf.bench_model [--seconds 40] [--device cpu|cuda|auto] [--batches 1,4,16] [--cuda-graphs 4,16]
                               [--grey-ab] [--json out.json]

Reports, for the same real WebM (VP8 + Opus, 640x480, encoded here by libvpx/libopus):
- the decode floor: demux + decode + analysis-size conversion (inter1srv.ingest) per media second;
- the baseline model's cost with 1, 4, 16 sessions side by side in each batch (``model_cost``):
  ``model_ratio_batchN`` per media second of session (8 s windows every 3 s, per-session caches
  as on the worker holding the session), ``model_per_window_batchN`` per media second of window;
- each as a ratio to the media time it covers (processing wall time / media time).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from workers.contract import WindowInput


def decode_floor(webm: bytes, seconds: float) -> tuple[float, list, np.ndarray]:
    from inter1srv.ingest.decode import MediaDecoder

    started = time.perf_counter()
    decoder = MediaDecoder(fps=10, width=320, max_height=240)
    decoder.feed(webm)
    out = decoder.finish()
    decoder.close()
    return (time.perf_counter() - started) / seconds, out.frames, out.audio


class SessionClip:
    """The decoded clip as a session's windows (``window`` s every ``hop`` s), for any session id."""

    def __init__(self, frames: list, audio: np.ndarray, window: float = 8.0, hop: float = 3.0) -> None:
        self.times = np.array([t for t, _ in frames])
        self.stack = np.stack([f for _, f in frames])
        self.audio, self.window = audio, window
        self.starts = np.arange(0.0, float(self.times[-1]) + 0.1 - window + 1e-6, hop)
        self.media = float(self.starts[-1]) + window  # media seconds the windows cover

    def windows_at(self, start: float, sids: list[str]) -> list[WindowInput]:
        """The window at ``start`` of each session in ``sids``: one read-only frame array shared by all."""
        from workers.contract import WindowInput

        sel = (self.times >= start) & (self.times < start + self.window)
        a0 = int(round(start * 16000))
        frames_in = self.stack[sel]
        frames_in.setflags(write=False)
        return [WindowInput(f"{sid}:{start}", sid, start, start + self.window, frames_in, self.times[sel],
                            self.audio[a0:a0 + int(self.window * 16000)], a0 / 16000) for sid in sids]


def model_cost(frames: list, audio: np.ndarray, batch: int, device: str = "cpu", window: float = 8.0,
               hop: float = 3.0) -> dict[str, float]:
    """The model's wall time on ``batch`` sessions side by side, as a worker sees them: every session
    is the whole clip (its own session id, so nothing is shared across sessions), its windows
    (``window`` s every ``hop`` s) come in order, and each call analyses the same window of every
    session (one batch). The per-session caches start empty (the warm-up's are cleared), so a
    session's first window does all of its work and later ones reuse the frames and speech they
    overlap, as on a worker holding the session.

    Returns seconds per media second of window (each window counted whole) and per media second
    of session (what capacity depends on)."""
    from workers.baseline import BaselineModel

    model = BaselineModel(device=device)
    session_clip = SessionClip(frames, audio, window, hop)
    model.analyze(session_clip.windows_at(0.0, [f"warm{k}" for k in range(batch)]))  # imports, kernels, device buffers
    if hasattr(model, "clear_caches"):
        model.clear_caches()
    sids = [f"s{k}" for k in range(batch)]
    calls = [session_clip.windows_at(float(s), sids) for s in session_clip.starts]
    sync = device.startswith("cuda")
    if sync:
        import torch

        torch.cuda.synchronize()
    started = time.perf_counter()
    for call in calls:
        model.analyze(call)
    if sync:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    return {"per_window_media_s": elapsed / (len(session_clip.starts) * batch * window),
            "per_session_media_s": elapsed / (batch * session_clip.media)}


def cuda_graphs_gain(frames: list, audio: np.ndarray, batch: int, device: str, repeats: int = 2) -> dict[str, list[float]]:
    """``model_cost`` per media second of session with the CUDA graphs of the small networks off and on
    (``INTER1SRV_CUDA_GRAPHS``, read when a model is built), alternating ``repeats`` times in one process."""
    import os

    from workers.cuda_graphs import GRAPHS_ENV

    before = os.environ.get(GRAPHS_ENV)
    out: dict[str, list[float]] = {"eager": [], "graphs": []}
    try:
        for _ in range(repeats):
            for mode in out:
                os.environ[GRAPHS_ENV] = "1" if mode == "graphs" else "0"
                out[mode].append(model_cost(frames, audio, batch, device=device)["per_session_media_s"])
    finally:
        if before is None:
            os.environ.pop(GRAPHS_ENV, None)
        else:
            os.environ[GRAPHS_ENV] = before
    return out


def grey_cache_gain(frames: list, audio: np.ndarray, repeats: int = 4, window: float = 8.0,
                    hop: float = 3.0) -> dict[str, list[float]]:
    """CPU s per media second of session of one session's windows in turn, with the per-session grey
    frames of the motion cues cached (as served) and converted again for every window, alternating
    ``repeats`` times in one process (the box's drift hits both alike)."""
    import torch

    from workers.baseline import BaselineModel
    from workers.features import to_gray_small

    session_clip = SessionClip(frames, audio, window, hop)
    model = BaselineModel("cpu")
    model.analyze(session_clip.windows_at(0.0, ["warm"]))
    cached = model._gray
    out: dict[str, list[float]] = {"cached": [], "uncached": []}
    for rep in range(repeats):
        for mode in out:
            model.clear_caches()
            model._gray = cached if mode == "cached" else (lambda w: to_gray_small(w.frames, torch.device("cpu")))
            started = time.process_time()
            for s in session_clip.starts:
                model.analyze(session_clip.windows_at(float(s), [f"{mode}{rep}"]))
            out[mode].append((time.process_time() - started) / session_clip.media)
    model._gray = cached
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--face", choices=("photo", "disc"), default="photo")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--batches", default="1,4,16", help="batch sizes, comma-separated")
    parser.add_argument("--grey-ab", action="store_true",
                        help="also: model CPU with the grey-frame cache vs without it, alternating in one process")
    parser.add_argument("--cuda-graphs", default="", metavar="BATCHES",
                        help="also (CUDA only): the model with the small networks' CUDA graphs off vs on at these "
                             "batch sizes (comma-separated), alternating in one process")
    parser.add_argument("--json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    from perf.media import clip

    webm = clip(args.seconds, 640, 480, 20, args.face)
    floor, frames, audio = decode_floor(webm, args.seconds)
    report = {"media_seconds": args.seconds, "device": device, "decode_floor_ratio": floor}
    for batch in (int(b) for b in args.batches.split(",") if b):
        cost = model_cost(frames, audio, batch, device=device)
        report[f"model_ratio_batch{batch}"] = cost["per_session_media_s"]
        report[f"model_per_window_batch{batch}"] = cost["per_window_media_s"]
    print(f"{'what':<28}{'processing s / media s':>24}")
    for key, value in report.items():
        if key not in ("media_seconds", "device"):
            print(f"{key:<28}{value:>24.4f}")
    if "model_ratio_batch1" in report:
        print(f"model(batch 1) / decode floor: {report['model_ratio_batch1'] / floor:.1f}x")
    if args.cuda_graphs and device.startswith("cuda"):
        for batch in (int(b) for b in args.cuda_graphs.split(",") if b):
            ab = cuda_graphs_gain(frames, audio, batch, device)
            report[f"cuda_graphs_ab_batch{batch}"] = ab
            med = {k: float(np.median(v)) for k, v in ab.items()}
            print(f"CUDA graphs at batch {batch}, s per media s of session (2 alternations): eager "
                  f"{med['eager']:.4f}, graphs {med['graphs']:.4f}, graphs / eager {med['graphs'] / med['eager']:.3f}")
    elif args.cuda_graphs:
        print("--cuda-graphs: CUDA is not available here, nothing to compare")
    if args.grey_ab:
        ab = grey_cache_gain(frames, audio)
        report["grey_cache_ab"] = ab
        med = {k: float(np.median(v)) for k, v in ab.items()}
        print("grey frames cached vs converted per window, CPU s per media s of session (4 alternations): "
              + ", ".join(f"{k} {[round(x, 4) for x in v]} median {med[k]:.4f}" for k, v in ab.items())
              + f"; saved {1 - med['cached'] / med['uncached']:.1%}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
