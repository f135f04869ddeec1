"""Each role speaks sd_notify as systemd expects: READY=1 when it can serve, WATCHDOG=1, STOPPING=1."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest


class NotifyListener:
    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.path = path
        self.messages: list[str] = []

    def wait_for(self, state: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(state in m.split("\n") for m in self.messages):
                return
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                pass
        raise AssertionError(f"{state} not received on {self.path}; got {self.messages}")

    def count(self, state: str) -> int:
        return sum(state in m.split("\n") for m in self.messages)


def _start(role: str, data_dir, notify_path: str, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, INTER1SRV_DATA_DIR=str(data_dir), NOTIFY_SOCKET=notify_path,
               WATCHDOG_USEC="600000", INTER1SRV_PORT=str(_free_port()), INTER1SRV_DEVICE="cpu")
    return subprocess.Popen([sys.executable, "-m", "inter1srv", role, *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(data_dir.parent / f"{role}.log", "ab"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(180)
def test_each_role_reports_ready_watchdog_stopping(tmp_path):
    listeners = {r: NotifyListener(str(tmp_path / f"{r}.sock")) for r in ("sequencer", "worker", "frontend")}
    procs = {}
    try:
        procs["sequencer"] = _start("sequencer", tmp_path / "data", listeners["sequencer"].path)
        listeners["sequencer"].wait_for("READY=1", 30)
        # the frontend may not be READY before a worker is connected
        procs["frontend"] = _start("frontend", tmp_path / "data", listeners["frontend"].path)
        time.sleep(1.5)
        listeners["frontend"].messages += _drain(listeners["frontend"])
        assert listeners["frontend"].count("READY=1") == 0, "frontend must not be ready without a worker"
        procs["worker"] = _start("worker", tmp_path / "data", listeners["worker"].path, "--id", "t0")
        listeners["worker"].wait_for("READY=1", 120)
        listeners["frontend"].wait_for("READY=1", 30)
        for role, listener in listeners.items():
            before = listener.count("WATCHDOG=1")
            listener.wait_for("WATCHDOG=1", 5)
            time.sleep(1.0)
            listener.messages += _drain(listener)
            assert listener.count("WATCHDOG=1") >= before + 2, f"{role} must keep pinging the watchdog"
        for role in ("frontend", "worker", "sequencer"):
            procs[role].send_signal(signal.SIGTERM)
            listeners[role].wait_for("STOPPING=1", 30)
            assert procs[role].wait(timeout=30) == 0, role
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()


def _drain(listener: NotifyListener) -> list[str]:
    out = []
    while True:
        try:
            out.append(listener.sock.recv(4096).decode())
        except TimeoutError:
            return out
