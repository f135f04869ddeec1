"""Concurrency sweep: capacity of inter1srv and of the naive reference, floors and model cost, one run.

    python -m perf.sweep --sessions 1,2,4,8 --seconds 30 [--naive-sessions 1,2,4] [--workers 1]
                         [--code worktree|git:REV|DIR] [--skip-naive] [--skip-floors] [--out DIR]

For each session count a fresh server is started and ``perf.loadgen`` drives that many real-time
sessions against it; the same is done for the naive one-process reference (``perf/naive.py``).
"Capacity" is the most sessions held with every session ending cleanly, zero dropped seconds and
windows, and p99 window ratio < 1.  Side by side in the same run: the decode-only floor (PyAV demux
+ decode of the same WebM, nothing else), the ingest floor (the server's MediaDecoder: decode +
analysis-size frames in the rings' pixel format + 16 kHz mono) and the baseline model's cost at batch 1/4/16.

Writes ``sweep.json``, ``table.txt`` and ``sweep.png`` (ratio / lag / drops / CPU against sessions)
under ``--out`` (default ``perf/results/sweep-<time>``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from perf.loadgen import code_dir_arg, run_level, table
from perf.media import RESULTS, clip


def decode_only_floor(webm: bytes, seconds: float) -> dict:
    """Demux + decode every packet of the WebM with PyAV (one thread per codec), nothing else."""
    import av

    wall0, cpu0 = time.perf_counter(), time.process_time()
    with av.open(io.BytesIO(webm)) as container:
        for stream in container.streams:
            stream.codec_context.thread_count = 1
        frames = 0
        for packet in container.demux():
            for _frame in packet.decode():
                frames += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"wall_ratio": wall / seconds, "cpu_per_media_s": cpu / seconds, "frames": frames}


def ingest_floor(webm: bytes, seconds: float) -> dict:
    """The server's own decode path (MediaDecoder: decode + 320x240 frames at 10 fps in the rings'
    pixel format + 16 kHz mono)."""
    from inter1srv.config import ServerConfig
    from inter1srv.ingest.decode import MediaDecoder

    fmt = getattr(ServerConfig.from_env(), "ring_pixel_format", None)  # code from before it: RGB only
    wall0, cpu0 = time.perf_counter(), time.process_time()
    decoder = MediaDecoder(fps=10, width=320, max_height=240, **({"pixel_format": fmt} if fmt else {}))
    decoder.feed(webm)
    decoder.finish()
    decoder.close()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"wall_ratio": wall / seconds, "cpu_per_media_s": cpu / seconds}


def model_costs(webm: bytes, seconds: float) -> dict:
    """Baseline model wall time per media second of window and of session, 1/4/16 sessions per batch
    (perf/bench_model.py ``model_cost``)."""
    import torch

    from perf.bench_model import decode_floor, model_cost

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, frames, audio = decode_floor(webm, seconds)
        return {f"batch{batch}": model_cost(frames, audio, batch) for batch in (1, 4, 16)}
    finally:
        torch.set_num_threads(threads)


def floors_with_code(code: Path | None, args: argparse.Namespace) -> dict:
    """The floors and model costs, in a child process importing the server code under test."""
    env = dict(os.environ)
    env.update(kv.split("=", 1) for kv in args.env)  # the server's settings (e.g. its rings' pixel format)
    root = Path(__file__).resolve().parent.parent
    # the code under test first, then this tree, then what the caller had (e.g. wheels unpacked in /tmp/site)
    env["PYTHONPATH"] = os.pathsep.join([str(code or root), str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    path = RESULTS / f"floors-{os.getpid()}.json"
    subprocess.run([sys.executable, "-m", "perf.sweep", "--floors-only", str(path), "--seconds", str(args.seconds),
                    "--width", str(args.width), "--height", str(args.height), "--fps", str(args.fps),
                    "--face", args.face],
                   check=True, env=env, cwd=code or root)
    floors = json.loads(path.read_text())
    path.unlink()
    return floors


def capacity(reports: list[dict], max_window_lag: float | None = None) -> int:
    """Most sessions held (capacity_ok) such that every smaller level tried was held too.

    ``max_window_lag``: also require p99 window lag <= this many seconds (a stricter capacity).
    """
    best = 0
    for r in sorted(reports, key=lambda r: r["sessions"]):
        lag = r["window_lag_s"]["p99"]
        if not r["capacity_ok"] or (max_window_lag is not None and (lag is None or lag > max_window_lag)):
            break
        best = r["sessions"]
    return best


def plot(series: dict[str, list[dict]], path: Path, title: str) -> None:
    """ratio / lag / drops / CPU against sessions, one line per series (label -> reports)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    styles = ["-o", "--s", "-.^", ":d", "-v"]
    for k, (label, rs) in enumerate(series.items()):
        if not rs:
            continue
        rs = sorted(rs, key=lambda r: r["sessions"])
        style, c = styles[k % len(styles)], f"C{k}"
        n = [r["sessions"] for r in rs]
        axes[0][0].plot(n, [r["window_ratio"]["p99"] or 0 for r in rs], style, color=c, label=f"{label} p99")
        axes[0][0].plot(n, [r["window_ratio"]["p50"] or 0 for r in rs], style, color=c, alpha=0.4,
                        label=f"{label} p50")
        axes[0][1].plot(n, [r["window_lag_s"]["p99"] or 0 for r in rs], style, color=c,
                        label=f"{label} window lag p99")
        axes[0][1].plot(n, [r["event_lag_s"]["p99"] or 0 for r in rs], style, color=c, alpha=0.4,
                        label=f"{label} event lag p99")
        axes[1][0].plot(n, [r["dropped_seconds"] for r in rs], style, color=c, label=f"{label} dropped s")
        axes[1][0].plot(n, [r["dropped_windows"] for r in rs], style, color=c, alpha=0.4,
                        label=f"{label} dropped windows")
        axes[1][1].plot(n, [(r.get("cpu_per_media_s") or 0) for r in rs], style, color=c, label=f"{label}")
    axes[0][0].axhline(1.0, color="red", lw=0.8)
    axes[0][0].axhline(0.25, color="grey", lw=0.8, ls=":")
    axes[0][0].set_title("window ratio (CQI latency / window s)")
    axes[0][1].axhline(1.0, color="grey", lw=0.8, ls=":")
    axes[0][1].set_title("lag (s)")
    axes[1][0].set_title("drops")
    axes[1][1].set_title("server CPU s per media s (per session)")
    for ax in axes.flat:
        ax.set_xlabel("concurrent sessions")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def merge_plot(out: Path, sweeps: list[Path], title: str = "") -> dict[str, list[dict]]:
    """One PNG from several sweep.json files (series keyed by server label)."""
    series: dict[str, list[dict]] = {}
    for path in sweeps:
        data = json.loads(Path(path).read_text())
        for r in data.get("inter1srv", []) + data.get("naive", []):
            series.setdefault(str(r["server"]), []).append(r)
    plot(series, out, title)
    return series


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", default="1,2,4,8")
    ap.add_argument("--naive-sessions", help="levels for the naive reference (default: --sessions)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=20)
    ap.add_argument("--face", choices=("photo", "disc"), default="photo",
                    help="the picture: a real face photo moved by the script (default) or a textured disc")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--code", help="server code: worktree (default), git:REV or a directory")
    ap.add_argument("--env", action="append", default=[], metavar="K=V", help="extra server environment (repeatable)")
    ap.add_argument("--label", default="inter1srv", help="name of the inter1srv series in tables and plots")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-floors", action="store_true")
    ap.add_argument("--stop-after-fail", type=int, default=1, help="stop a sweep after this many failed levels")
    ap.add_argument("--out")
    ap.add_argument("--floors-only", metavar="JSON", help=argparse.SUPPRESS)
    ap.add_argument("--merge", nargs="+", metavar="SWEEP_JSON",
                    help="only plot: merge these sweep.json files into --out (a .png path)")
    args = ap.parse_args()
    if args.merge:
        merge_plot(Path(args.out or RESULTS / "merged.png"), [Path(p) for p in args.merge],
                   "640x480 VP8+Opus real-time sessions")
        return
    if args.floors_only:
        webm = clip(args.seconds, args.width, args.height, args.fps, args.face)
        floors = {"decode_only_floor": decode_only_floor(webm, args.seconds),
                  "ingest_floor": ingest_floor(webm, args.seconds), "model": model_costs(webm, args.seconds)}
        Path(args.floors_only).write_text(json.dumps(floors))
        return
    out = Path(args.out or RESULTS / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    code = code_dir_arg(args.code)
    levels = [int(x) for x in args.sessions.split(",") if x]
    naive_levels = [int(x) for x in (args.naive_sessions or args.sessions).split(",") if x]
    webm = clip(args.seconds, args.width, args.height, args.fps, args.face)
    result: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "args": vars(args)}
    if not args.skip_floors:
        result.update(floors_with_code(code, args))
        print("floors:", json.dumps({k: result[k] for k in ("decode_only_floor", "ingest_floor", "model")}))

    def sweep(kind: str, lv: list[int]) -> list[dict]:
        reports, fails = [], 0
        for n in lv:
            r = run_level(sessions=n, seconds=args.seconds, width=args.width, height=args.height, fps=args.fps,
                          face=args.face, server_kind=kind, workers=args.workers, code_dir=code,
                          env=dict(kv.split("=", 1) for kv in args.env) if kind == "inter1srv" else None)
            if kind == "inter1srv":
                r["server"] = args.label
            reports.append(r)
            print(table([r]).splitlines()[-1], flush=True)
            (out / f"{kind}-{n}.json").write_text(json.dumps(r, indent=2))
            fails += 0 if r["capacity_ok"] else 1
            if fails >= args.stop_after_fail:
                break
        return reports

    reports = sweep("inter1srv", levels)
    naive = [] if args.skip_naive else sweep("naive", naive_levels)
    for r in reports + naive:
        r.pop("per_session", None)
    result.update({
        "inter1srv": reports,
        "naive": naive,
        "capacity": capacity(reports),
        "naive_capacity": capacity(naive) if naive else None,
        "capacity_lag1": capacity(reports, 1.0),
        "naive_capacity_lag1": capacity(naive, 1.0) if naive else None,
    })
    if naive and result["naive_capacity"]:
        result["capacity_gain_vs_naive"] = result["capacity"] / result["naive_capacity"]
    text = table(reports + naive)
    text += f"\n\ncapacity (zero drops, p99 window ratio < 1): inter1srv {result['capacity']}"
    if naive:
        text += f", naive {result['naive_capacity']}"
    text += f"\nstricter, also p99 window lag <= 1 s: inter1srv {result['capacity_lag1']}"
    if naive:
        text += f", naive {result['naive_capacity_lag1']}"
    if "decode_only_floor" in result:
        text += (f"\ndecode-only floor: {result['decode_only_floor']['cpu_per_media_s']:.4f} CPU s / media s; "
                 f"ingest floor: {result['ingest_floor']['cpu_per_media_s']:.4f}; model per session media s: "
                 + ", ".join(f"b{b}={result['model'][f'batch{b}']['per_session_media_s']:.4f}" for b in (1, 4, 16)))
    (out / "sweep.json").write_text(json.dumps(result, indent=2))
    (out / "table.txt").write_text(text + "\n")
    plot({args.label: reports, "naive": naive}, out / "sweep.png",
         f"{args.width}x{args.height} VP8+Opus, {args.seconds:g} s sessions, {args.workers} worker(s)")
    print(text)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
