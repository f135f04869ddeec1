"""Model and decode cost per media second, measured side by side in one run.

    python -m perf.bench_model [--seconds 40] [--device cpu|cuda|auto] [--batches 1,4,16] [--json out.json]

Reports, for the same real WebM (VP8 + Opus, 640x480, encoded here by libvpx/libopus):
- the decode floor: demux + decode + analysis-size conversion (inter1srv.ingest) per media second;
- the baseline model's cost per media second of window at batch 1, 4 and 16;
- each as a ratio to the media time it covers (processing wall time / media time).
The full load generator and concurrency sweep live in the perf issue; this is the first brick.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def decode_floor(webm: bytes, seconds: float) -> tuple[float, list, np.ndarray]:
    from inter1srv.ingest.decode import MediaDecoder

    started = time.perf_counter()
    decoder = MediaDecoder(fps=10, width=320, max_height=240)
    decoder.feed(webm)
    out = decoder.finish()
    decoder.close()
    return (time.perf_counter() - started) / seconds, out.frames, out.audio


def model_cost(frames: list, audio: np.ndarray, batch: int, repeats: int = 3, device: str = "cpu") -> float:
    """Wall time per media second of window of one ``analyze`` call on ``batch`` windows 3 s apart,
    each timed call on a fresh model: per-session caches start empty, as on a worker that sees
    these windows first (windows of the batch that overlap still share work)."""
    from workers.baseline import BaselineModel
    from workers.contract import WindowInput

    models = [BaselineModel(device=device) for _ in range(repeats + 1)]
    times = np.array([t for t, _ in frames])
    stack = np.stack([f for _, f in frames])
    windows = []
    for k in range(batch):
        start = (3.0 * k) % max(1.0, times[-1] - 8.0)
        sel = (times >= start) & (times < start + 8.0)
        a0 = int(start * 16000)
        windows.append(WindowInput(f"j{k}", "s", start, start + 8.0, stack[sel], times[sel],
                                   audio[a0:a0 + 128000], start))
    models[0].analyze(windows)  # warm-up: imports, kernels, the acoustic model
    elapsed = 0.0
    for model in models[1:]:
        started = time.perf_counter()
        model.analyze(windows)
        if device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        elapsed += time.perf_counter() - started
    return elapsed / repeats / (8.0 * batch)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--face", choices=("photo", "disc"), default="photo")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--batches", default="1,4,16", help="batch sizes, comma-separated")
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
        report[f"model_ratio_batch{batch}"] = model_cost(frames, audio, batch, device=device)
    print(f"{'what':<28}{'ratio (processing s / media s)':>32}")
    for key, value in report.items():
        if key not in ("media_seconds", "device"):
            print(f"{key:<28}{value:>32.4f}")
    print(f"model(batch 1) / decode floor: {report['model_ratio_batch1'] / floor:.1f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
