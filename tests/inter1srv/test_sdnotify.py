import socket
import time

from inter1srv import sdnotify


def test_notify_never_blocks_on_a_reader_that_does_not_read(tmp_path, monkeypatch):
    path = str(tmp_path / "n.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    started = time.monotonic()
    results = [sdnotify.notify("WATCHDOG=1") for _ in range(5000)]
    assert time.monotonic() - started < 5
    assert results[0] is True and False in results  # the queue filled up and pings were dropped, not waited on
    assert listener.recv(64) == b"WATCHDOG=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert sdnotify.notify("READY=1") is False
