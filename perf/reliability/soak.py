"""Soak: N live sessions back to back for a long time; RSS and shared memory must stay flat.

    python perf/reliability/soak.py --sessions 6 --minutes 30 [--url ws://... --key K | --start-server]

Each slot streams a real WebM clip at real-time pace, closes, and starts again.
Every 10 s it samples the RSS of every server process and the bytes in /dev/shm
under the server's prefix, and writes perf/results/soak.json (+ soak.png when
matplotlib is installed). Flat means: the last third's mean within 10 % of the
first third's, for RSS; shared memory returning to the per-session size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2] / "tests" / "e2e"))

from harness import ServerProcess, chunks_of, shm_bytes, stream_session  # noqa: E402

from inter1srv.synthmedia import default_script, encode_webm  # noqa: E402


def rss_tree(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            cmd = proc.cmdline()
            role = next((r for r in ("frontend", "sequencer", "worker") if r in cmd), "supervisor")
            out[role] = out.get(role, 0) + proc.memory_info().rss
        except psutil.Error:
            pass
    return out


async def slot(url: str, key: str, clip: bytes, pace: float, chunks: list[bytes], stop_at: float, stats: dict):
    while time.monotonic() < stop_at:
        record = await stream_session(url, key, chunks, pace_seconds=pace)
        stats["sessions"] += 1
        stats["dropped"] += len(record.of("coverage.dropped"))
        if record.close_code != 1000:
            stats["bad_closes"] += 1


async def main_async(args) -> dict:
    clip = encode_webm(default_script(args.clip_seconds), width=640, height=480, fps=20)
    n = int(args.clip_seconds / 0.3)
    chunks = chunks_of(clip, -(-len(clip) // n))
    server = None
    if args.start_server:
        server = ServerProcess(Path(tempfile.mkdtemp()) / "data", workers=args.workers).start()
        url, key, pid = server.url, server.key, server.proc.pid
    else:
        url, key, pid = args.url, args.key, args.pid
    stats = {"sessions": 0, "dropped": 0, "bad_closes": 0}
    samples = []
    stop_at = time.monotonic() + args.minutes * 60
    tasks = []
    for _ in range(args.sessions):
        tasks.append(asyncio.create_task(slot(url, key, clip, 0.3, chunks, stop_at, stats)))
        await asyncio.sleep(args.clip_seconds / args.sessions)  # staggered starts
    started = time.monotonic()
    while time.monotonic() < stop_at:
        samples.append({"t": round(time.monotonic() - started, 1), "rss": rss_tree(pid), "shm": shm_bytes(pid)})
        await asyncio.sleep(10)
    await asyncio.gather(*tasks)
    if server is not None:
        server.stop()
    third = max(1, len(samples) // 3)
    first = sum(sum(s["rss"].values()) for s in samples[:third]) / third
    last = sum(sum(s["rss"].values()) for s in samples[-third:]) / third
    return {"args": vars(args), "stats": stats, "samples": samples,
            "rss_first_third_mb": round(first / 1e6, 1), "rss_last_third_mb": round(last / 1e6, 1),
            "rss_flat": last <= first * 1.10}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clip-seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--start-server", action="store_true")
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--pid", type=int, help="supervisor pid of a running server")
    parser.add_argument("--out", default=str(HERE.parents[1] / "results" / "soak.json"))
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ts = [s["t"] / 60 for s in report["samples"]]
        fig, ax = plt.subplots(figsize=(8, 4))
        for role in ("frontend", "sequencer", "worker", "supervisor"):
            ax.plot(ts, [s["rss"].get(role, 0) / 1e6 for s in report["samples"]], label=f"RSS {role}")
        ax.plot(ts, [s["shm"] / 1e6 for s in report["samples"]], label="/dev/shm", linestyle="--")
        ax.set_xlabel("minutes")
        ax.set_ylabel("MB")
        ax.legend()
        ax.set_title(f"soak: {args.sessions} live sessions")
        fig.tight_layout()
        fig.savefig(out.with_suffix(".png"))
    except ImportError:
        pass


if __name__ == "__main__":
    main()
