"""Where NVIDIA DALI pays in the media path: DALI against PyAV / torch, side by side in one run.

    python -m perf.bench_media [--seconds 20] [--repeats 5] [--json out.json]

For the same real WebM (VP8 + Opus, 640x480 at 30 fps, MediaRecorder's layout, encoded here by
libvpx/libopus):

- decode: PyAV (what the frontend runs) against DALI's ``fn.decoders.video`` on the CPU and, where
  CUDA is present, on the GPU (``mixed``: NVDEC), each decoding the whole clip from its EBML header
  (DALI needs the data from a keyframe: a browser puts one every 100 frames);
- grey frames: the worker's reduction of one 8 s window (80 ring frames of 320x240) to the motion
  cues' 80x60 luma, :func:`workers.features.to_gray_small` against :class:`workers.dali_media.DaliGray`
  on each device present, with the largest difference between the two;
- the resident memory a worker gains by importing DALI and building its pipeline.

Times are medians of ``--repeats`` runs, interleaved (A, B, A, B, ...) so drift hits both sides;
ratios are DALI / the default path (below 1: DALI is faster).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

import numpy as np
import psutil


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def pyav_decode(webm: bytes) -> int:
    """Decode every video frame to RGB with PyAV (the frontend's decoder); returns the frame count."""
    import av

    n = 0
    with av.open(io.BytesIO(webm)) as container:
        for frame in container.decode(video=0):
            frame.to_ndarray(format="rgb24")
            n += 1
    return n


class DaliDecode:
    """DALI's video decoder over a whole WebM in memory (``device``: ``cpu`` or ``mixed``)."""

    def __init__(self, device: str, device_id: int | None) -> None:
        from nvidia.dali import fn, pipeline_def, types

        @pipeline_def(batch_size=1, num_threads=1, device_id=device_id, exec_pipelined=False,
                      exec_async=False, prefetch_queue_depth=1)
        def decode():
            encoded = fn.external_source(name="webm", dtype=types.UINT8, ndim=1)
            return fn.decoders.video(encoded, device=device)

        self.pipe = decode()
        self.pipe.build()

    def __call__(self, webm: bytes) -> int:
        self.pipe.feed_input("webm", [np.frombuffer(webm, dtype=np.uint8)])
        (frames,) = self.pipe.run()
        return int(frames.shape()[0][0])


def window_frames(webm: bytes, n: int = 80) -> np.ndarray:
    """``n`` frames of the clip at the rings' size (320x240), as the frontend writes them."""
    from perf.bench_model import decode_floor

    _, frames, _ = decode_floor(webm, 1.0)  # the frontend's decode to the rings' size
    return np.stack([f for _, f in frames[:n]])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # as a CPU worker runs
    from perf.media import clip
    from workers.features import to_gray_small

    webm = clip(args.seconds, 640, 480, 30)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    report: dict = {"media_seconds": args.seconds, "devices": devices, "repeats": args.repeats}
    if "cuda" in devices:
        torch.zeros(1, device="cuda")  # the CUDA context is not DALI's memory
    rss0 = psutil.Process().memory_info().rss
    from workers.dali_media import DaliGray

    grays = {d: DaliGray(d) for d in devices}
    report["dali_import_and_pipeline_rss_mb"] = round((psutil.Process().memory_info().rss - rss0) / 2**20, 1)

    decoders = {"pyav": pyav_decode, "dali_cpu": DaliDecode("cpu", None)}
    if "cuda" in devices:
        decoders["dali_mixed"] = DaliDecode("mixed", torch.cuda.current_device())
    counts = {name: dec(webm) for name, dec in decoders.items()}  # warm-up, and the frames each saw
    times: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(args.repeats):
        for name, dec in decoders.items():
            times[name].append(_median_time(lambda dec=dec: dec(webm), 1))
    for name in decoders:
        t = statistics.median(times[name])
        report[f"decode_{name}"] = {"frames": counts[name], "fps": round(counts[name] / t, 1),
                                    "s_per_media_s": round(t / args.seconds, 5)}
    for name in decoders:
        if name != "pyav":
            report[f"decode_{name}"]["vs_pyav"] = round(
                report[f"decode_{name}"]["s_per_media_s"] / report["decode_pyav"]["s_per_media_s"], 3)

    frames = window_frames(webm)
    for d in devices:
        dev = torch.device(d)
        sync = torch.cuda.synchronize if d == "cuda" else (lambda: None)
        paths = {"torch": lambda f, dev=dev: to_gray_small(f, dev), "dali": grays[d]}
        diff = float((paths["dali"](frames) - paths["torch"](frames)).abs().max())
        ms: dict[str, list[float]] = {"torch": [], "dali": []}
        for _ in range(args.repeats):
            for name, run in paths.items():
                def once(run=run, sync=sync):
                    run(frames)
                    sync()

                ms[name].append(1e3 * _median_time(once, 3))
        torch_ms, dali_ms = statistics.median(ms["torch"]), statistics.median(ms["dali"])
        report[f"grey_window_{d}"] = {"frames": int(frames.shape[0]), "torch_ms": round(torch_ms, 3),
                                      "dali_ms": round(dali_ms, 3), "dali_vs_torch": round(dali_ms / torch_ms, 3),
                                      "max_abs_diff": diff}

    print(f"{'media path':<34}{'fps':>10}{'s / media s':>14}{'vs PyAV':>10}")
    for name in decoders:
        r = report[f"decode_{name}"]
        print(f"{'decode ' + name:<34}{r['fps']:>10}{r['s_per_media_s']:>14.4f}{r.get('vs_pyav', 1.0):>10.2f}")
    print(f"{'grey frames of one window':<34}{'torch ms':>10}{'DALI ms':>14}{'DALI/torch':>12}{'max diff':>10}")
    for d in devices:
        r = report[f"grey_window_{d}"]
        print(f"{'  on ' + d:<34}{r['torch_ms']:>10}{r['dali_ms']:>14}{r['dali_vs_torch']:>12}{r['max_abs_diff']:>10.1e}")
    print(f"resident memory of DALI (import + pipelines): {report['dali_import_and_pipeline_rss_mb']} MB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
