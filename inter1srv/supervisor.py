"""``inter1srv serve``: start every role as its own process, restart what dies, drain on SIGTERM.

Children report readiness with the sd_notify protocol (READY=1) on a socket
the supervisor owns, exactly as they would to systemd.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field

from shm.segment import sweep_creator, sweep_stale

from . import logs, sdnotify
from .config import ServerConfig

log = logging.getLogger("inter1srv.supervisor")
READY_TIMEOUT_S = 180.0


@dataclass
class Child:
    role: str
    index: int = 0
    proc: subprocess.Popen | None = None
    ready: bool = False
    restarts: int = 0
    watchdog_kills: int = 0
    last_ping: float = 0.0
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


class Supervisor:
    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        cfg.instance_pid = os.getpid()
        self.prefix = f"i1s.{cfg.instance_pid}."
        self.children: list[Child] = []
        self.retiring: list[Child] = []  # replaced by a reload, finishing their work
        self.stopping = False
        self.reload_requested = False
        self.reloads = 0
        self._gpus: list[str] | None = None
        self.parent_notify = os.environ.pop("NOTIFY_SOCKET", None)
        self.notify_address = f"\0inter1srv-notify-{os.getpid()}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.notify.bind(self.notify_address)
        self.notify.settimeout(0.2)

    # -- children ----------------------------------------------------------------
    @property
    def gpus(self) -> list[str]:
        if self._gpus is None:
            self._gpus = visible_gpus()
        return self._gpus

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.cfg.to_env())
        env["NOTIFY_SOCKET"] = "@" + self.notify_address[1:]
        env.pop("WATCHDOG_PID", None)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must be set before torch loads: idle threads sleep
        # the same watchdog systemd would run: a ready child that stops pinging is killed and restarted
        env["WATCHDOG_USEC"] = str(int(self.cfg.watchdog_seconds * 1e6))
        return env

    def _spawn(self, child: Child) -> None:
        cmd = [sys.executable, "-m", "inter1srv", child.role]
        env = self._env()
        if child.role == "worker":
            cmd += ["--id", f"w{child.index}"]
            env.update(worker_gpu_env(child.index, self.gpus, self.cfg.device, env))  # before the child starts
        child.proc = subprocess.Popen(cmd, env=env)
        child.ready = False
        child.started_at = time.monotonic()
        logs.log(log, logging.INFO, "started", child=child.role, index=child.index, pid=child.proc.pid)

    def _poll_notify(self) -> None:
        try:
            data, ancdata, _flags, _addr = self.notify.recvmsg(4096, socket.CMSG_SPACE(12))
        except (TimeoutError, BlockingIOError):
            return
        pid = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        if pid is None:
            return
        states = data.split(b"\n")
        for child in self.children:
            if child.pid == pid:
                if b"READY=1" in states:
                    child.ready = True
                    child.last_ping = time.monotonic()
                if b"WATCHDOG=1" in states:
                    child.last_ping = time.monotonic()

    def _wait_ready(self, children: list[Child]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(c.ready for c in children):
            if self.stopping:
                raise RuntimeError("stopping")
            if time.monotonic() > deadline:
                raise RuntimeError("children did not become ready: " + ", ".join(c.role for c in children if not c.ready))
            for c in children:
                if c.proc and c.proc.poll() is not None:
                    raise RuntimeError(f"{c.role} exited with {c.proc.returncode} during start-up")
            self._poll_notify()

    # -- main ---------------------------------------------------------------------
    def run(self) -> int:
        removed = sweep_stale()
        if removed:
            logs.log(log, logging.WARNING, "removed stale shared memory of a dead server", segments=len(removed))
        os.makedirs(self.cfg.data_path, exist_ok=True)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_reload)
        try:
            sequencer = Child("sequencer")
            self.children.append(sequencer)
            self._spawn(sequencer)
            self._wait_ready([sequencer])
            workers = [Child("worker", i) for i in range(self.cfg.workers)]
            self.children += workers
            for w in workers:
                self._spawn(w)
            self._wait_ready(workers)
            frontends = [Child("frontend", i) for i in range(self.cfg.frontends)]
            self.children += frontends
            for f in frontends:
                self._spawn(f)  # several frontends share the port with SO_REUSEPORT
            self._wait_ready(frontends)
        except RuntimeError as exc:
            logs.log(log, logging.ERROR, "start-up failed", error=str(exc))
            self._shutdown()
            return 1
        self._notify_parent("READY=1")
        print(f"inter1srv ready on ws://{self.cfg.host}:{self.cfg.port}/v1/stream/analyze "
              f"(workers={self.cfg.workers}, data dir {self.cfg.data_path})", flush=True)
        while not self.stopping:
            self._poll_notify()
            self._watchdog()
            self._reap()
            if self.reload_requested:
                self.reload_requested = False
                self._reload()
        self._shutdown()
        return 0

    def _notify_parent(self, state: str) -> None:
        """Tell our own supervisor (systemd, when run as one unit) what the whole server is doing."""
        if self.parent_notify:
            os.environ["NOTIFY_SOCKET"] = self.parent_notify
            sdnotify.notify(state)

    def _on_signal(self, signum, _frame) -> None:
        self.stopping = True

    def _on_reload(self, signum, _frame) -> None:
        self.reload_requested = True

    def _reload(self) -> None:
        """SIGHUP: replace workers and frontends one by one without dropping sessions.

        A new process is started and made ready before the old one retires: an old
        frontend (SIGUSR1) stops accepting and exits when its last session ends; an
        old worker (SIGTERM) finishes its batch, and the sequencer re-queues what it
        had not started. The sequencer keeps running (it owns the sessions' state).
        """
        logs.log(log, logging.INFO, "reload: replacing workers and frontends")
        for old in [c for c in self.children if c.role in ("worker", "frontend")]:
            if self.stopping:
                break
            new = Child(old.role, old.index)
            self._spawn(new)
            self.children.append(new)  # so its READY=1 is recognised
            try:
                self._wait_ready([new])
            except RuntimeError as exc:
                logs.log(log, logging.ERROR, "reload: replacement failed; keeping the old process", error=str(exc))
                self.children.remove(new)
                if new.proc and new.proc.poll() is None:
                    new.proc.kill()
                continue
            self.children.remove(old)
            self.retiring.append(old)
            old.proc.send_signal(signal.SIGUSR1 if old.role == "frontend" else signal.SIGTERM)
        self.reloads += 1
        logs.log(log, logging.INFO, "reload done", retiring=len(self.retiring))

    def _watchdog(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if (child.ready and child.proc is not None and child.proc.poll() is None
                    and now - child.last_ping > self.cfg.watchdog_seconds):
                logs.log(log, logging.ERROR, "watchdog: child stopped pinging; killing it", child=child.role,
                         index=child.index, pid=child.pid, silent_s=round(now - child.last_ping, 1))
                child.proc.kill()
                child.ready = False
                child.watchdog_kills += 1

    def _reap(self) -> None:
        for old in list(self.retiring):
            if old.proc is None or old.proc.poll() is not None:
                self.retiring.remove(old)
                if old.role == "frontend" and old.pid:
                    sweep_creator(self.prefix, old.pid)
        for child in self.children:
            if self.stopping or child.proc is None or child.proc.poll() is None:
                continue
            code = child.proc.returncode
            logs.log(log, logging.ERROR, "child exited; restarting", child=child.role, index=child.index,
                     pid=child.pid, code=code)
            if child.role == "frontend":
                sweep_creator(self.prefix, child.pid)
            child.restarts += 1
            if time.monotonic() - child.started_at < 2.0:
                time.sleep(1.0)  # do not spin on a child that dies at once
            self._spawn(child)

    def _shutdown(self) -> None:
        """Frontend first (it drains sessions), then workers and the sequencer."""
        self.stopping = True
        self._notify_parent("STOPPING=1")
        everyone = self.children + self.retiring
        order = [[c for c in everyone if c.role == "frontend"], [c for c in everyone if c.role != "frontend"]]
        for group, grace in zip(order, (self.cfg.max_drain_seconds + 10, 15), strict=True):
            for c in group:
                if c.proc and c.proc.poll() is None:
                    c.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for c in group:
                if c.proc is None:
                    continue
                try:
                    c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    c.proc.kill()
                    c.proc.wait()
        for c in everyone:
            if c.pid:
                sweep_creator(self.prefix, c.pid)
        self.notify.close()


def visible_gpus() -> list[str]:
    """GPU indices this process may use: $CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    preset = os.environ.get("CUDA_VISIBLE_DEVICES")
    if preset is not None:
        return [g.strip() for g in preset.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return gpus_in_listing(out.stdout)


def gpus_in_listing(listing: str) -> list[str]:
    """The CUDA_VISIBLE_DEVICES values of ``nvidia-smi -L``'s devices: a GPU's index (``GPU 3: ...``),
    or, for a GPU split by MIG, the UUID of each of its instances (one CUDA device each)."""
    gpus: list[tuple[str, list[str]]] = []
    for line in listing.splitlines():
        gpu = re.match(r"GPU (\d+):", line)
        mig = re.search(r"\(UUID: (MIG-[^)\s]+)\)", line)
        if gpu:
            gpus.append((gpu.group(1), []))
        elif mig and line.lstrip().startswith("MIG") and gpus:
            gpus[-1][1].append(mig.group(1))
    return [dev for index, migs in gpus for dev in (migs or [index])]


def worker_gpu_env(index: int, gpus: list[str], device: str, env: dict[str, str]) -> dict[str, str]:
    """The GPU variables worker ``index`` starts with on top of ``env``: one GPU each, in turn, counted
    as nvidia-smi counts them (PCI bus order; CUDA's own default is fastest first) unless ``env`` says
    otherwise. Empty when the worker runs on the CPU."""
    gpu = worker_gpu(index, gpus, device)
    if gpu is None:
        return {}
    return {"CUDA_VISIBLE_DEVICES": gpu, "CUDA_DEVICE_ORDER": env.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID")}


def worker_gpu(index: int, gpus: list[str], device: str) -> str | None:
    """The CUDA_VISIBLE_DEVICES value of worker ``index`` (None: leave the environment alone)."""
    if device == "cpu" or not gpus:
        return None
    return gpus[index % len(gpus)]


def main(cfg: ServerConfig) -> int:
    logs.setup("supervisor")
    return Supervisor(cfg).run()
