"""Smoke test of the perf load generator: one real-time session of a ~10 s clip against a real server.

Checks the report's shape and billing, never timings (benchmarks are not timed tests).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: perf/ is not installed

from perf.loadgen import run_level, table  # noqa: E402

FIELDS = (
    "window_ratio", "window_latency_s", "event_lag_s", "window_lag_s", "dropped_seconds", "dropped_windows",
    "cpu_per_media_s", "cpu_s_by_role", "rss_peak_per_session_bytes", "pss_peak_per_session_bytes",
    "shm_bytes_per_session",
    "billed_seconds", "streamed_seconds", "capacity_ok",
)


@pytest.mark.timeout(120)
def test_one_session_report(tmp_path):
    report = run_level(sessions=1, seconds=10.0, width=320, height=240, fps=15, data_dir=tmp_path / "data")
    json.dumps(report)  # the report is plain JSON
    for key in FIELDS:
        assert key in report, key
    for key in ("p50", "p90", "p99"):
        assert report["window_ratio"][key] is not None
    assert report["sessions_ok"] == 1, report.get("server_log_tail")
    assert report["window_ratio"]["n"] >= 2  # windows [0, 8) and the tail window
    assert report["streamed_seconds"] == pytest.approx(10.0, abs=0.2)
    assert report["billed_seconds"] == pytest.approx(report["streamed_seconds"], abs=0.25)
    assert report["cpu_per_media_s"] > 0
    assert report["shm_bytes_per_session"] > 0
    # PSS splits a shared page (the ring) between the processes that map it, RSS counts it in each
    assert report["pss_peak_per_session_bytes"] > 0 and report["pss_reads"] >= 3
    assert report["pss_peak_bytes"] <= report["rss_peak_bytes"]
    assert "inter1srv" in table([report])
