"""A few Prometheus text-format counters and gauges of the frontend."""

from __future__ import annotations

import collections


class Metrics:
    def __init__(self) -> None:
        self.counters: collections.Counter[str] = collections.Counter()

    def inc(self, name: str, value: float = 1) -> None:
        self.counters[name] += value

    def render(self, frontend) -> str:
        lines = [
            "# TYPE inter1srv_sessions_open gauge",
            f"inter1srv_sessions_open {len(frontend.sessions)}",
            "# TYPE inter1srv_workers_up gauge",
            f"inter1srv_workers_up {frontend.workers_up}",
        ]
        for name, value in sorted(self.counters.items()):
            lines.append(f"# TYPE inter1srv_{name} counter")
            lines.append(f"inter1srv_{name} {value}")
        return "\n".join(lines) + "\n"
