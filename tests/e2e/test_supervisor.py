"""``inter1srv serve`` speaks sd_notify to its own parent (systemd) as one unit."""

import os
import signal
import socket

from harness import ServerProcess


def test_serve_reports_ready_then_stopping_to_notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(120)
    srv = ServerProcess(tmp_path / "data")
    os.environ["NOTIFY_SOCKET"] = path
    try:
        srv.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        messages = [listener.recv(4096).decode()]
        assert "READY=1" in messages[0]
        assert srv.ready(), "READY=1 only once the server can serve"
        srv.proc.send_signal(signal.SIGTERM)
        messages.append(listener.recv(4096).decode())
        assert "STOPPING=1" in messages[1]
        assert srv.proc.wait(timeout=60) == 0
        errors = [line for line in srv.log_path.read_text().splitlines() if '"level":"error"' in line]
        assert errors == [], "a clean stop logs no error"
    finally:
        srv.stop()
        listener.close()
