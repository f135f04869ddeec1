"""A tiny Prometheus text-format registry: counters, gauges and histograms that can cross processes.

The sequencer keeps its own histograms and pushes ``snapshot()``s to the
frontend, which renders them beside its own on ``/metrics``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

RATIO_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def snapshot(self) -> dict:
        return {"buckets": list(self.buckets), "counts": list(self.counts), "sum": self.total, "count": self.n}


def render_counter(name: str, value: float, help_text: str, labels: str = "") -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name}{labels} {value}"]


def render_gauge(name: str, value: float, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]


def render_histogram(name: str, snap: dict, help_text: str) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    cumulative = 0
    for bound, count in zip(snap["buckets"], snap["counts"], strict=False):
        cumulative += count
        lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {snap["count"]}')
    lines.append(f"{name}_sum {snap['sum']}")
    lines.append(f"{name}_count {snap['count']}")
    return lines
