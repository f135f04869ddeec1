"""Load generator: N concurrent real-time sessions over real WebSockets against a real server.

    python -m perf.loadgen --sessions 4 --seconds 30 [--width 640 --height 480] [--workers 1]
                           [--server inter1srv|naive] [--url ws://... --key K] [--json out.json]

Each session streams the same real WebM (VP8 + Opus made by libvpx/libopus, speech-like
audio) at real-time pace in recorder-sized chunks (``--timeslice``, 0.3 s), starts staggered
(``--stagger``, default one hop spread over the sessions), asks for per-window CQI
(``session.configure`` include ``conversation_quality``) and records every event with its
receive wall time.  Unless ``--url`` is given, a fresh server (``inter1srv serve`` or the
naive reference ``perf/naive.py``) is started for the run, so every process of the server
is measured (CPU, RSS, shared memory) from outside with psutil.

What is measured (all from outside the server, client clock):

- ``sched(t)``: the wall time at which the chunk holding media time ``t`` was due to be sent
  (``t0 + chunk.media_end``; the recorder emits a chunk once its media is captured).  Using
  the due time, not the actual send time, means server backpressure on the socket counts
  against the server.
- window latency / ratio: a window's CQI event (``conversation_quality.updated``, once per
  window, ``t`` = window end ``b``) received at ``r``: latency = ``r - sched(b)``; ratio =
  latency / window length.  This is end to end: last chunk's decode, scheduling, batching
  wait, model, merge, emission and the client's own receive, not only the model.
- event lag: for every analysis event with media time ``t``: ``r - sched(t)`` (includes the
  wait for the window that covers ``t`` to close: up to a hop by design); and
  ``window lag``: ``r - sched(end of the window that produced it)``.
- drops: ``session.ended.dropped_ranges`` (seconds) and the windows the schedule owed but
  never delivered (expected - delivered CQI events); the server's own counters
  (``/metrics``) when it has them.
- CPU seconds per media second: user+system CPU of the server's whole process tree over the
  run, divided by the media seconds streamed by all sessions (per-role split too).
- peak RSS: sampled every ``--sample`` s, sum over server processes, minus the sum before
  the first session, per session; shared memory: bytes of ``/dev/shm/i1s.<pid>.*`` segments
  at the peak, per session.
- billing: ``session.ended.billed_seconds`` against the seconds streamed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import websockets

from perf.media import RESULTS, Chunk, clip, recorder_chunks

ROOT = Path(__file__).resolve().parent.parent
ANALYSIS_EVENTS = (
    "signal.detected", "signal.updated", "signal.ended", "engagement.updated",
    "conversation_quality.updated", "feedback.generated", "coverage.dropped", "coverage.degraded",
)


# ---------------------------------------------------------------------------- server processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server under test in its own process group: ``inter1srv serve`` or the naive reference."""

    def __init__(self, kind: str, data_dir: Path, workers: int = 1, env: dict[str, str] | None = None,
                 code_dir: Path | None = None):
        self.kind = kind
        self.code_dir = Path(code_dir or ROOT)
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.workers = workers
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.key = "naive" if kind == "naive" else self._create_key()
        self.log_path = self.data_dir / "server.log"

    def _create_key(self) -> str:
        out = subprocess.run([sys.executable, "-m", "inter1srv", "keys", "create", "perf", "--data-dir",
                              str(self.data_dir)], check=True, capture_output=True, text=True,
                             cwd=self.code_dir, env=self._env())
        return out.stdout.strip()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream/analyze"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # the server's code comes from code_dir (e.g. a snapshot of HEAD); perf/ from this tree
        env["PYTHONPATH"] = os.pathsep.join([str(self.code_dir), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return env

    def start(self, timeout: float = 180.0) -> Server:
        env = self._env()
        env.update({"INTER1SRV_PORT": str(self.port), "INTER1SRV_DATA_DIR": str(self.data_dir),
                    "INTER1SRV_WORKERS": str(self.workers), "INTER1SRV_MAX_SESSIONS": "64"})
        env.setdefault("INTER1SRV_DEVICE", "auto")
        env.update(self.extra_env)
        if self.kind == "naive":
            cmd = [sys.executable, "-m", "perf.naive", "--port", str(self.port)]
        else:
            cmd = [sys.executable, "-m", "inter1srv", "serve"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=self.code_dir,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become ready:\n" + self.log_tail())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                return r.read().decode()
        except OSError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def role_of(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return "gone"
    for role in ("frontend", "sequencer", "worker"):
        if role in cmd:
            return role
    if any("perf.naive" in c for c in cmd):
        return "naive"
    return "supervisor"


class ProcessMeter:
    """CPU (user+system), RSS and PSS of a server's process tree; processes that exit keep their last CPU.

    RSS counts a shared page (the shared-memory rings, mapped by a frontend and a worker) once per
    process that maps it; PSS (proportional set size) splits it between them, so summed over the
    tree it is the memory the server really holds. PSS is read at most every ``PSS_INTERVAL_S``:
    the kernel walks a process's mappings for it (~8 ms for 20 sessions' rings), which would
    cost the box being measured CPU time at every sample (0.5 s)."""

    PSS_INTERVAL_S = 5.0

    def __init__(self, server: Server):
        self.server = server
        self.cpu: dict[int, tuple[str, float]] = {}
        self.start_cpu: dict[int, float] = {}
        self.peak_rss = 0
        self.base_rss = 0
        self.peak_pss = 0
        self.base_pss = 0
        self._pss_at = -math.inf
        self.pss_reads = 0
        self.peak_shm = 0
        self.peak_shm_segments = 0
        self.samples: list[tuple[float, int, int]] = []  # (wall, rss, shm)

    def _read(self) -> tuple[int, int | None, int]:
        now = time.monotonic()
        with_pss = now - self._pss_at >= self.PSS_INTERVAL_S
        if with_pss:
            self._pss_at, self.pss_reads = now, self.pss_reads + 1
        rss = pss = 0
        for p in self.server.processes():
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    mem = p.memory_full_info() if with_pss else p.memory_info()
                    rss += mem.rss
                    pss += getattr(mem, "pss", 0)
                    if p.pid not in self.cpu:
                        self.cpu[p.pid] = (role_of(p), 0.0)
                    self.cpu[p.pid] = (self.cpu[p.pid][0], t.user + t.system)
            except psutil.Error:
                continue
        shm = 0
        segments = 0
        prefix = f"i1s.{self.server.proc.pid}."
        try:
            for entry in os.scandir("/dev/shm"):
                if entry.name.startswith(prefix):
                    try:
                        shm += entry.stat().st_size
                        segments += 1
                    except OSError:
                        pass
        except FileNotFoundError:
            pass
        if shm > self.peak_shm:
            self.peak_shm, self.peak_shm_segments = shm, segments
        return rss, pss if with_pss else None, shm

    def begin(self) -> None:
        self._pss_at, self.pss_reads = -math.inf, 0
        self.base_rss, base_pss, _ = self._read()
        self._pss_at = -math.inf  # the first sample of the run reads PSS too
        self.base_pss = base_pss or 0
        self.start_cpu = {pid: c for pid, (_, c) in self.cpu.items()}

    def sample(self) -> None:
        rss, pss, shm = self._read()
        self.peak_rss = max(self.peak_rss, rss)
        if pss is not None:
            self.peak_pss = max(self.peak_pss, pss)
        self.samples.append((time.monotonic(), rss, shm))

    def cpu_by_role(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, (role, c) in self.cpu.items():
            out[role] = out.get(role, 0.0) + c - self.start_cpu.get(pid, 0.0)
        return out


# ---------------------------------------------------------------------------- sessions
@dataclass
class SessionRun:
    index: int
    due: list[float] = field(default_factory=list)  # due wall time of each chunk
    sent: list[float] = field(default_factory=list)  # actual wall time each send returned
    chunk_ends: list[float] = field(default_factory=list)
    events: list[tuple[float, dict]] = field(default_factory=list)
    ready: dict | None = None
    close_code: int | None = None
    error: str | None = None
    streamed: float = 0.0

    def sched(self, t: float) -> float:
        """Due wall time of the chunk holding media time ``t``."""
        i = bisect.bisect_left(self.chunk_ends, t - 1e-6)
        return self.due[min(i, len(self.due) - 1)]

    def of(self, etype: str) -> list[tuple[float, dict]]:
        return [(r, e) for r, e in self.events if e["type"] == etype]


async def run_session(url: str, key: str, chunks: list[Chunk], index: int, delay: float,
                      config: dict | None) -> SessionRun:
    run = SessionRun(index=index, chunk_ends=[c.media_end for c in chunks])
    run.streamed = chunks[-1].media_end if chunks else 0.0
    await asyncio.sleep(delay)
    kwargs = {"max_size": None, "compression": None, "additional_headers": {"Authorization": f"Bearer {key}"},
              "open_timeout": 60, "ping_interval": None}
    try:
        async with websockets.connect(url, **kwargs) as ws:
            first = json.loads(await ws.recv())
            run.events.append((time.monotonic(), first))
            if first["type"] != "session.ready":
                run.error = f"refused: {first}"
                return run
            run.ready = first["data"]

            async def receiver() -> None:
                try:
                    async for message in ws:
                        run.events.append((time.monotonic(), json.loads(message)))
                except websockets.ConnectionClosed:
                    pass

            recv = asyncio.create_task(receiver())
            if config is not None:
                await ws.send(json.dumps(config))
            t0 = time.monotonic()
            try:
                for chunk in chunks:
                    due = t0 + chunk.media_end
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    run.due.append(due)
                    await ws.send(chunk.data)
                    run.sent.append(time.monotonic())
                await ws.send(json.dumps({"type": "session.close"}))
            except websockets.ConnectionClosed as exc:
                run.error = f"closed while sending: {exc}"
            await recv
            run.close_code = ws.close_code
    except (OSError, websockets.WebSocketException, TimeoutError) as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    return run


# ---------------------------------------------------------------------------- statistics
def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 0.5), "p90": pct(values, 0.9), "p99": pct(values, 0.99),
            "max": max(values) if values else None, "mean": statistics.fmean(values) if values else None}


def expected_windows(media_end: float, window: float, hop: float) -> int:
    if media_end <= 0:
        return 0
    n = 0 if media_end < window - 1e-6 else int(math.floor((media_end - window) / hop + 1e-6)) + 1
    last = (n - 1) * hop + window if n else 0.0
    return n + (1 if media_end > last + 1e-3 else 0)


def analyse_session(run: SessionRun, window: float, hop: float) -> dict:
    ratios, latencies, lags, window_lags = [], [], [], []
    events = run.events
    cqi_positions = [i for i, (_, e) in enumerate(events) if e["type"] == "conversation_quality.updated"]
    for i, (r, e) in enumerate(events):
        if e["type"] not in ANALYSIS_EVENTS or not run.due:
            continue
        t = float(e.get("t", 0.0))
        if e["type"] != "coverage.dropped":
            lags.append(r - run.sched(t))
        if e["type"] == "conversation_quality.updated":
            b = float(e["t"])
            tl = (e["data"].get("timeline") or [{}])[0]
            length = min(window, b) if tl else window
            latency = r - run.sched(b)
            latencies.append(latency)
            ratios.append(latency / max(length, 1e-3))
        if e["type"] != "coverage.dropped":
            j = bisect.bisect_left(cqi_positions, i)
            if j < len(cqi_positions):
                b = float(events[cqi_positions[j]][1]["t"])
                window_lags.append(r - run.sched(b))
    ended = next((e for _, e in events if e["type"] == "session.ended"), None)
    data = ended["data"] if ended else {}
    dropped = sum(b - a for a, b in ((d["start"], d["end"]) for d in data.get("dropped_ranges", [])))
    delivered = len(cqi_positions)
    expected = expected_windows(run.streamed, window, hop)
    send_late = [s - d for s, d in zip(run.sent, run.due, strict=False)]
    errors = [e["data"].get("code") for _, e in events if e["type"] == "error"]
    return {
        "index": run.index,
        "error": run.error,
        "close_code": run.close_code,
        "errors": errors,
        "ended": ended is not None,
        "streamed_seconds": run.streamed,
        "billed_seconds": data.get("billed_seconds"),
        "dropped_seconds": dropped,
        "windows_expected": expected,
        "windows_delivered": delivered,
        "events": len(events),
        "window_ratios": ratios,
        "window_latencies": latencies,
        "event_lags": lags,
        "window_lags": window_lags,
        "send_late_p99": pct(send_late, 0.99),
        "end_wait_s": (events[-1][0] - run.due[-1]) if events and run.due else None,
    }


def parse_metrics(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        if name.endswith("_total") and "{" not in name:
            try:
                out[name.removeprefix("inter1srv_")] = float(value)
            except ValueError:
                pass
        elif name.startswith("inter1srv_window_processing_ratio") or name.startswith("inter1srv_event_lag"):
            try:
                out[name.removeprefix("inter1srv_")] = float(value)
            except ValueError:
                pass
    return out


def histogram_summary(metrics: dict, name: str) -> dict | None:
    """count, mean and bucket-bound p50/p90/p99 of a Prometheus histogram scraped by parse_metrics."""
    count = metrics.get(f"{name}_count")
    if not count:
        return None
    buckets = []
    for key, value in metrics.items():
        if key.startswith(f"{name}_bucket{{le=\""):
            bound = key.split('le="', 1)[1].rstrip('"}')
            buckets.append((math.inf if bound == "+Inf" else float(bound), value))
    buckets.sort()
    out = {"n": int(count), "mean": metrics.get(f"{name}_sum", 0.0) / count}
    for q in (0.5, 0.9, 0.99):
        out[f"p{round(q * 100)}_le"] = next((b for b, c in buckets if c >= q * count), None)
    return out


# ---------------------------------------------------------------------------- one run
async def _drive(url: str, key: str, chunks: list[Chunk], sessions: int, stagger: float,
                 meter: ProcessMeter | None, sample_s: float, config: dict | None) -> list[SessionRun]:
    stop = asyncio.Event()

    async def sampler() -> None:
        while not stop.is_set():
            if meter is not None:
                await asyncio.to_thread(meter.sample)
            try:
                await asyncio.wait_for(stop.wait(), timeout=sample_s)
            except TimeoutError:
                pass

    task = asyncio.create_task(sampler())
    runs = await asyncio.gather(*(run_session(url, key, chunks, i, i * stagger, config) for i in range(sessions)))
    stop.set()
    await task
    return list(runs)


def run_level(*, sessions: int, seconds: float, width: int = 640, height: int = 480, fps: int = 20,
              timeslice: float = 0.3, stagger: float | None = None, server_kind: str = "inter1srv",
              workers: int = 1, env: dict[str, str] | None = None, url: str | None = None,
              key: str | None = None, sample_s: float = 0.5, data_dir: Path | None = None,
              profile: str | None = None, native: bool = False, code_dir: Path | None = None,
              face: str = "photo") -> dict:
    """Start a server (unless ``url``), run ``sessions`` real-time sessions, return the report dict."""
    webm = clip(seconds, width, height, fps, face)
    chunks = recorder_chunks(webm, timeslice)
    config = {"type": "session.configure", "include": ["conversation_quality"]}
    server = meter = None
    tmp = None
    if url is None:
        if data_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="i1perf.")
            data_dir = Path(tmp.name)
        server = Server(server_kind, data_dir, workers=workers, env=env, code_dir=code_dir).start()
        url, key = server.url, server.key
        try:
            meter = ProcessMeter(server)
            time.sleep(1.0)  # let start-up settle before the CPU baseline
            meter.begin()
        except BaseException:  # never leave a server running behind a failed measurement
            server.stop()
            if tmp is not None:
                tmp.cleanup()
            raise
    hop = 3.0
    stagger = hop / sessions if stagger is None else stagger
    profiler = None
    client_cpu0 = psutil.Process().cpu_times()
    load0 = os.getloadavg()[0]
    wall0 = time.monotonic()
    try:
        if profile and server is not None:
            profiler = _start_profiler(server, profile, seconds + sessions * stagger + 20, native)
        runs = asyncio.run(_drive(url, key, chunks, sessions, stagger, meter, sample_s, config))
        wall = time.monotonic() - wall0
        if meter is not None:
            meter.sample()
        if server is not None:
            time.sleep(1.5)  # the sequencer pushes its counters to the frontend periodically
        metrics = parse_metrics(server.metrics()) if server is not None else {}
    finally:
        log_tail = server.log_tail(30) if server is not None else ""
        if profiler is not None:
            _stop_profiler(profiler)
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()
    client_cpu1 = psutil.Process().cpu_times()
    window = float((runs[0].ready or {}).get("window_seconds", 8.0)) if runs else 8.0
    hop = float((runs[0].ready or {}).get("hop_seconds", 3.0)) if runs else 3.0
    per = [analyse_session(r, window, hop) for r in runs]
    media = sum(p["streamed_seconds"] for p in per)
    billed = sum(p["billed_seconds"] or 0.0 for p in per)
    ratios = [x for p in per for x in p.pop("window_ratios")]
    latencies = [x for p in per for x in p.pop("window_latencies")]
    lags = [x for p in per for x in p.pop("event_lags")]
    wlags = [x for p in per for x in p.pop("window_lags")]
    report: dict = {
        "server": server_kind if server is not None else url,
        "sessions": sessions,
        "media_seconds_per_session": chunks[-1].media_end,
        "video": f"{width}x{height}@{fps} VP8 + Opus (libvpx/libopus), {len(webm)} bytes",
        "timeslice_s": timeslice,
        "stagger_s": stagger,
        "workers": workers,
        "code": str(code_dir or ROOT),
        "env": env or {},
        "window_seconds": window,
        "hop_seconds": hop,
        "wall_seconds": wall,
        "window_ratio": summary(ratios),
        "window_latency_s": summary(latencies),
        "event_lag_s": summary(lags),
        "window_lag_s": summary(wlags),
        "dropped_seconds": sum(p["dropped_seconds"] for p in per),
        "dropped_windows": sum(max(0, p["windows_expected"] - p["windows_delivered"]) for p in per),
        "windows_expected": sum(p["windows_expected"] for p in per),
        "windows_delivered": sum(p["windows_delivered"] for p in per),
        "streamed_seconds": media,
        "billed_seconds": billed,
        "billed_over_streamed": billed / media if media else None,
        "sessions_ok": sum(1 for p in per if p["ended"] and p["error"] is None and p["close_code"] == 1000),
        "loadavg_1m_start_end": [load0, os.getloadavg()[0]],
        "client_cpu_s": (client_cpu1.user + client_cpu1.system) - (client_cpu0.user + client_cpu0.system),
        "server_window_ratio": histogram_summary(metrics, "window_processing_ratio"),
        "server_event_lag_s": histogram_summary(metrics, "event_lag_seconds"),
        "server_metrics": metrics,
        "per_session": per,
    }
    if meter is not None:
        by_role = meter.cpu_by_role()
        total = sum(by_role.values())
        report.update({
            "cpu_s": total,
            "cpu_s_by_role": by_role,
            "cpu_per_media_s": total / media if media else None,
            "cpu_per_media_s_by_role": {k: v / media for k, v in by_role.items()} if media else {},
            "rss_base_bytes": meter.base_rss,
            "rss_peak_bytes": meter.peak_rss,
            "rss_peak_per_session_bytes": (meter.peak_rss - meter.base_rss) / sessions,
            "pss_base_bytes": meter.base_pss,
            "pss_peak_bytes": meter.peak_pss,
            "pss_peak_per_session_bytes": (meter.peak_pss - meter.base_pss) / sessions if meter.peak_pss else None,
            "pss_reads": meter.pss_reads,
            "shm_peak_bytes": meter.peak_shm,
            "shm_segments_at_peak": meter.peak_shm_segments,
            "shm_bytes_per_session": meter.peak_shm / meter.peak_shm_segments if meter.peak_shm_segments else 0,
        })
    report["capacity_ok"] = capacity_ok(report)
    if report["sessions_ok"] != sessions:
        report["server_log_tail"] = log_tail
    return report


def snapshot(rev: str = "HEAD") -> Path:
    """Export ``rev`` of the repo to perf/results/snapshot-<sha> (stable server code while others edit)."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    dest = RESULTS / f"snapshot-{sha}"
    if not (dest / "inter1srv").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def code_dir_arg(value: str | None) -> Path | None:
    """``--code``: a directory, ``worktree`` (this checkout, default) or ``git:REV`` (exported snapshot)."""
    if value is None or value == "worktree":
        return None
    if value.startswith("git:"):
        return snapshot(value[4:])
    return Path(value).resolve()


def capacity_ok(report: dict) -> bool:
    """Held: every session ended cleanly, nothing dropped, p99 window ratio < 1."""
    p99 = report["window_ratio"]["p99"]
    return (report["sessions_ok"] == report["sessions"] and report["dropped_seconds"] < 1e-6
            and report["dropped_windows"] == 0 and p99 is not None and p99 < 1.0)


def _start_profiler(server: Server, out: str, duration: float, native: bool = False):
    """py-spy on every server process (one SVG per role) while the load runs."""
    procs = []
    for p in server.processes():
        role = role_of(p)
        if role == "supervisor":
            continue
        path = f"{out}.{role}.{p.pid}.txt"
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        cmd = [spy, "record", "--pid", str(p.pid), "--rate", "50", "--format", "raw",
               "--duration", str(int(duration)), "-o", path]
        cmd.append("--native" if native else "--nonblocking")
        procs.append(subprocess.Popen(cmd,
                                      stdout=subprocess.DEVNULL, stderr=open(path + ".log", "wb")))
    return procs


def _stop_profiler(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


# ---------------------------------------------------------------------------- output
def _f(v, fmt="{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def table(reports: list[dict]) -> str:
    head = (f"{'server':<10}{'sess':>5}{'ratio p50':>10}{'p90':>7}{'p99':>7}{'lag p50':>9}{'p99':>7}"
            f"{'win-lag p99':>12}{'drop s':>8}{'drop w':>7}{'cpu/med s':>10}{'rss MB/s':>9}{'pss MB/s':>9}{'shm MB/s':>9}"
            f"{'billed/streamed':>17}{'ok':>4}")
    lines = [head, "-" * len(head)]
    for r in reports:
        lines.append(
            f"{str(r['server'])[:10]:<10}{r['sessions']:>5}{_f(r['window_ratio']['p50']):>10}"
            f"{_f(r['window_ratio']['p90'], '{:.2f}'):>7}{_f(r['window_ratio']['p99'], '{:.2f}'):>7}"
            f"{_f(r['event_lag_s']['p50'], '{:.2f}'):>9}{_f(r['event_lag_s']['p99'], '{:.2f}'):>7}"
            f"{_f(r['window_lag_s']['p99'], '{:.2f}'):>12}{r['dropped_seconds']:>8.1f}{r['dropped_windows']:>7}"
            f"{_f(r.get('cpu_per_media_s')):>10}{_f(_mb(r.get('rss_peak_per_session_bytes')), '{:.0f}'):>9}"
            f"{_f(_mb(r.get('pss_peak_per_session_bytes')), '{:.0f}'):>9}"
            f"{_f(_mb(r.get('shm_bytes_per_session')), '{:.1f}'):>9}"
            f"{r['billed_seconds']:>8.1f}/{r['streamed_seconds']:<8.1f}{'Y' if r['capacity_ok'] else 'n':>4}"
        )
    return "\n".join(lines)


def _mb(v):
    return None if v is None else v / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=20)
    ap.add_argument("--face", choices=("photo", "disc"), default="photo",
                    help="the picture: a real face photo moved by the script (default) or a textured disc")
    ap.add_argument("--timeslice", type=float, default=0.3)
    ap.add_argument("--stagger", type=float)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--server", choices=("inter1srv", "naive"), default="inter1srv")
    ap.add_argument("--url")
    ap.add_argument("--key")
    ap.add_argument("--env", action="append", default=[], metavar="K=V",
                    help="extra environment for the server (repeatable), e.g. INTER1SRV_BATCH_WAIT_MS=50")
    ap.add_argument("--code", help="server code: worktree (default), git:REV (exported snapshot) or a directory")
    ap.add_argument("--profile",
                    help="py-spy every server process during the run: PREFIX.<role>.<pid>.txt (collapsed stacks; "
                         "summarise with python -m perf.profsum)")
    ap.add_argument("--native", action="store_true", help="with --profile: native frames too (C, libvpx, torch)")
    ap.add_argument("--json", help="report path (default perf/results/loadgen-<time>.json)")
    args = ap.parse_args()
    report = run_level(sessions=args.sessions, seconds=args.seconds, width=args.width, height=args.height,
                       fps=args.fps, face=args.face, timeslice=args.timeslice, stagger=args.stagger, server_kind=args.server,
                       workers=args.workers, env=dict(kv.split("=", 1) for kv in args.env), url=args.url, key=args.key, profile=args.profile, native=args.native,
                       code_dir=code_dir_arg(args.code))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = Path(args.json or RESULTS / f"loadgen-{time.strftime('%Y%m%d-%H%M%S')}.json")
    path.write_text(json.dumps(report, indent=2))
    print(table([report]))
    print(f"report: {path}")


if __name__ == "__main__":
    main()
