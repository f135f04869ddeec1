"""systemd's sd_notify protocol (READY=1, WATCHDOG=1, STOPPING=1), without libsystemd.

The supervisor of ``inter1srv serve`` listens on a socket of its own and passes
it as NOTIFY_SOCKET, so each role speaks the same protocol under systemd and
under the supervisor.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send ``state`` (e.g. "READY=1") to $NOTIFY_SOCKET; False when there is none."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)  # a reader that is not reading must never stall our event loop
        try:
            sock.connect(address)
            sock.send(state.encode())
        except OSError:  # BlockingIOError included: a dropped ping is better than a stuck loop
            return False
    return True


def watchdog_interval() -> float | None:
    """Half of systemd's WATCHDOG_USEC, in seconds, when the watchdog is on for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6
