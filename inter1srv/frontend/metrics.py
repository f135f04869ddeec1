"""``/metrics``: the frontend's own counters plus what the sequencer pushes, in Prometheus text format."""

from __future__ import annotations

import collections

from inter1srv.promtext import render_counter, render_gauge, render_histogram

_SEQUENCER_COUNTERS = {
    "windows_queued": "Windows scheduled for analysis.",
    "windows_processed": "Window results returned by workers.",
    "windows_delivered": "Windows whose results were delivered to clients.",
    "windows_shed": "Windows shed under backlog (live sessions).",
    "windows_timed_out": "Live windows given up after waiting too long.",
    "windows_failed": "Windows whose analysis failed.",
    "late_results": "Results that arrived after their window was given up.",
    "workers_lost": "Worker connections lost (crash, kill or restart).",
    "windows_spilled": "Windows sent to a worker other than their session's (idle, or theirs stalled).",
    "sessions_repinned": "Sessions moved to another worker (theirs gone, or two sessions busier).",
    "billed_seconds_delivered": "Media seconds billed (union of delivered windows).",
    "dropped_seconds": "Media seconds reported in coverage.dropped.",
}


class Metrics:
    def __init__(self) -> None:
        self.counters: collections.Counter[str] = collections.Counter()

    def inc(self, name: str, value: float = 1) -> None:
        self.counters[name] += value

    def render(self, frontend) -> str:
        lines: list[str] = []
        lines += render_gauge("inter1srv_sessions_open", len(frontend.sessions), "Sessions open on this frontend.")
        lines += render_gauge("inter1srv_capacity_left", frontend.capacity_left, "Sessions this frontend can still take.")
        lines += render_gauge("inter1srv_workers_up", frontend.workers_up, "Workers connected to the sequencer.")
        lines += render_gauge("inter1srv_ring_occupancy_max", _ring_occupancy(frontend),
                              "Highest share of a session's media ring holding unanalysed media (0-1).")
        lines += render_counter("inter1srv_sessions_total", self.counters["sessions_total"], "Sessions accepted.")
        lines += render_counter("inter1srv_bytes_received_total", self.counters["bytes_received_total"],
                                "WebM bytes received.")
        lines += render_counter("inter1srv_auth_failures_total", self.counters["auth_failures_total"],
                                "Upgrade requests refused with 401.")
        lines += render_counter("inter1srv_slow_readers_total", self.counters["slow_readers_total"],
                                "Sessions cut off because the client stopped reading events (close 1008).")
        lines += render_counter("inter1srv_floods_total", self.counters["floods_total"],
                                "Sessions cut off for a message flood (ih4029, close 1008).")
        errors = sorted((k, v) for k, v in self.counters.items() if k.startswith("errors_total{"))
        if errors:
            lines += ["# HELP inter1srv_errors_total Error events sent, by code.", "# TYPE inter1srv_errors_total counter"]
            lines += [f"inter1srv_{k} {v}" for k, v in errors]
        stats = frontend.sequencer_stats or {}
        counters = stats.get("counters", {})
        for name, help_text in _SEQUENCER_COUNTERS.items():
            lines += render_counter(f"inter1srv_{name}_total", counters.get(name, 0), help_text)
        lines += render_gauge("inter1srv_windows_waiting", stats.get("queued", 0), "Windows queued at the sequencer.")
        lines += render_gauge("inter1srv_windows_inflight", stats.get("inflight", 0), "Windows held by workers.")
        devices = stats.get("devices") or {}
        names = sorted({name for values in devices.values() for name in values})
        for name in names:
            lines += [f"# HELP inter1srv_{name} Per worker GPU, from torch.cuda.", f"# TYPE inter1srv_{name} gauge"]
            lines += [f'inter1srv_{name}{{worker="{wid}"}} {values[name]}'
                      for wid, values in sorted(devices.items()) if name in values]
        if "window_ratio" in stats:
            lines += render_histogram("inter1srv_window_processing_ratio", stats["window_ratio"],
                                      "Per-window processing wall time (dispatch to result) / window media seconds.")
        if "event_lag" in stats:
            lines += render_histogram("inter1srv_event_lag_seconds", stats["event_lag"],
                                      "Emission wall time minus arrival of the window's newest media.")
        return "\n".join(lines) + "\n"


def _ring_occupancy(frontend) -> float:
    ring_seconds = frontend.cfg.ring_seconds
    worst = 0.0
    for session in list(frontend.sessions.values()):
        backlog = max(0.0, getattr(session, "sent_until", 0.0) - getattr(session, "frontier", 0.0))
        worst = max(worst, min(1.0, backlog / ring_seconds))
    return round(worst, 3)
