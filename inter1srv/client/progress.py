"""Progress on stderr: a redrawn bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Media seconds sent, events received and seconds dropped."""

    def __init__(self, total_seconds: float, stream: TextIO | None = None, every: float = 5.0,
                 tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = max(0.0, total_seconds)
        self.every = every
        self.sent = 0.0
        self.events = 0
        self.dropped = 0.0
        self._last = 0.0
        self._drawn = False

    def line(self) -> str:
        total = f"/{self.total:.1f}" if self.total else ""
        return f"sent {self.sent:.1f}{total} s | {self.events} events | dropped {self.dropped:.1f} s"

    def bar(self, width: int = 24) -> str:
        frac = min(1.0, self.sent / self.total) if self.total else 0.0
        filled = int(round(frac * width))
        return f"[{'#' * filled}{'.' * (width - filled)}] {100 * frac:3.0f}% {self.line()}"

    def update(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if force or now - self._last >= 0.1:
                self.stream.write("\r\033[K" + self.bar())
                self.stream.flush()
                self._drawn, self._last = True, now
        elif force or now - self._last >= self.every:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last = now

    def clear(self) -> None:
        """Erase the bar before other output goes to the terminal."""
        if self.tty and self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False

    def finish(self) -> None:
        if self.tty:
            self.update(force=True)
            self.stream.write("\n")
        else:
            self.update(force=True)
        self.stream.flush()
