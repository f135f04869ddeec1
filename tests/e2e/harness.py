"""Real server processes and real WebSocket clients for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import websockets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``inter1srv serve`` in its own process group, with a fresh data dir and key."""

    def __init__(self, data_dir: Path, **settings):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.settings = {"workers": 1, "device": "cpu", **settings}
        self.proc: subprocess.Popen | None = None
        self.key = self._create_key()
        self.log_path = self.data_dir / "server.log"

    def _create_key(self) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "inter1srv", "keys", "create", "tests", "--data-dir", str(self.data_dir)],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"ws://{self.base}/v1/stream/analyze"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({f"INTER1SRV_{k.upper()}": str(v) for k, v in self.settings.items()})
        env["INTER1SRV_PORT"] = str(self.port)
        env["INTER1SRV_DATA_DIR"] = str(self.data_dir)
        return env

    def start(self, timeout: float = 120.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inter1srv", "serve"], env=self.env(), stdout=log, stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.1)
        raise RuntimeError("server did not become ready:\n" + self.log_tail())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.base}/readyz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def metric(self, name: str) -> float:
        """One sample of ``name`` (a full metric name, no labels) from ``GET /metrics``."""
        with urllib.request.urlopen(f"http://{self.base}/metrics") as r:
            for line in r.read().decode().splitlines():
                if line.startswith(f"{name} "):
                    return float(line.split()[1])
        raise AssertionError(f"metric {name} missing")

    def shm_bytes(self) -> int:
        return shm_bytes(self.proc.pid)

    def children(self) -> dict[str, list[psutil.Process]]:
        roles: dict[str, list[psutil.Process]] = {}
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                cmd = child.cmdline()
            except psutil.Error:
                continue
            for role in ("frontend", "sequencer", "worker"):
                if role in cmd:
                    roles.setdefault(role, []).append(child)
        return roles

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()

    def kill_all(self) -> None:
        """kill -9 the whole server: supervisor and every role."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def shm_bytes(server_pid: int) -> int:
    """Bytes of tmpfs pages held by the segments of the server whose supervisor is ``server_pid``."""
    from shm.segment import make_server_prefix

    prefix, total = make_server_prefix(server_pid), 0
    for name in os.listdir("/dev/shm"):
        if name.startswith(prefix):
            try:
                total += os.stat(f"/dev/shm/{name}").st_blocks * 512
            except FileNotFoundError:
                pass
    return total


@dataclass
class SessionRecord:
    events: list[dict] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    def of(self, etype: str) -> list[dict]:
        return [e for e in self.events if e["type"] == etype]

    @property
    def ended(self) -> dict | None:
        ended = self.of("session.ended")
        return ended[0] if ended else None


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


async def stream_session(
    url: str,
    key: str,
    chunks: list[bytes],
    *,
    config: dict | None = None,
    pace_seconds: float = 0.0,
    close: bool = True,
    subprotocol: bool = False,
    on_event=None,
) -> SessionRecord:
    """Stream ``chunks`` (``pace_seconds`` apart), ask to close, and collect every event."""
    record = SessionRecord()
    kwargs = {"max_size": None, "compression": None}
    if subprotocol:
        kwargs["subprotocols"] = ["access_token", key]
    else:
        kwargs["additional_headers"] = {"Authorization": f"Bearer {key}"}
    async with websockets.connect(url, **kwargs) as ws:
        async def receiver():
            try:
                async for message in ws:
                    event = json.loads(message)
                    record.events.append(event)
                    if on_event is not None:
                        await on_event(event, ws)
            except websockets.ConnectionClosed:
                pass

        recv_task = asyncio.create_task(receiver())
        while not record.events and not recv_task.done():
            await asyncio.sleep(0.01)
        if record.events and record.events[0]["type"] == "session.ready":
            if config is not None:
                await ws.send(json.dumps(config))
            try:
                for chunk in chunks:
                    await ws.send(chunk)
                    if pace_seconds:
                        await asyncio.sleep(pace_seconds)
                if close:
                    await ws.send(json.dumps({"type": "session.close"}))
            except websockets.ConnectionClosed:
                pass
        await recv_task
        record.close_code = ws.close_code
        record.close_reason = ws.close_reason or ""
    return record


def assert_well_formed(record: SessionRecord) -> None:
    """Protocol invariants every session must satisfy."""
    assert record.events[0]["type"] == "session.ready", record.events[:2]
    ts = [e["t"] for e in record.events[1:] if e["type"] not in ("error", "session.updated", "session.closing")]
    assert ts == sorted(ts), ("events must go out in non-decreasing media time",
                              [(e["type"], e["t"]) for e in record.events[1:]])
    active: dict[str, float] = {}
    for e in record.events:
        d = e["data"]
        if e["type"] == "signal.detected":
            assert d["signal_type"] not in active
            active[d["signal_type"]] = d["start"]
            assert d["probability"] in ("high", "medium", "low")
            assert e["signal"] == d["signal_type"] and isinstance(e["probability"], float)
        elif e["type"] == "signal.updated":
            assert d["signal_type"] in active
        elif e["type"] == "signal.ended":
            assert d["end"] >= active.pop(d["signal_type"])
    if record.ended is not None:
        assert not active, f"signals never ended: {active}"


def serve_side_by_side(servers: list[ServerProcess], webm: bytes, seconds: float, config: dict) -> list[SessionRecord]:
    """The same WebM streamed to every server at once; each session must end cleanly (close 1000, well
    formed, nothing dropped, ``seconds`` billed) with no error in its server's log."""
    async def all_sessions():
        return await asyncio.gather(*(stream_session(srv.url, srv.key, chunks_of(webm, 64 * 1024), config=config)
                                      for srv in servers))

    records = asyncio.run(all_sessions())
    for record, srv in zip(records, servers, strict=True):
        assert record.close_code == 1000, (record.events[-3:], srv.log_tail())
        assert_well_formed(record)
        ended = record.ended["data"]
        assert ended["dropped_ranges"] == [] and abs(ended["billed_seconds"] - seconds) < 0.2, ended
        assert '"level":"error"' not in srv.log_tail(400)
    return records


def detected_signals(record: SessionRecord) -> list[tuple]:
    """(signal type, start, probability level, probability score) of each ``signal.detected``."""
    return [(e["data"]["signal_type"], e["data"]["start"], e["data"]["probability"], e["data"]["probability_score"])
            for e in record.of("signal.detected")]
