"""The Python client, ``inter1srv stream`` and ``inter1srv report`` against a real server."""

import asyncio
import json
import os
import re
import subprocess
import sys
import time

import pytest

from inter1srv.client import AuthenticationError, SignalDetected, connect, webm_chunks
from inter1srv.report import load
from inter1srv.synthmedia import default_script, encode_mp4, encode_webm

SECONDS = 20.0
LINE = re.compile(r"^\[\d+\.\ds\] signal\.detected [a-z]+ (high|medium|low) \(\d\.\d\d\): \S")


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("media") / "clip.webm"
    path.write_bytes(encode_webm(default_script(SECONDS), width=320, height=240, fps=15))
    return path


def cli(*args: str, key: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if key is not None:
        env["INTER1SRV_KEY"] = key
    return subprocess.run([sys.executable, "-m", "inter1srv", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_stream_command_writes_the_servers_timeline_and_report_draws_it(server, clip_file, tmp_path):
    out = tmp_path / "timeline.jsonl"
    run = cli("stream", str(clip_file), "--url", server.url, "--pace", "fast", "--include", "conversation_quality",
              "--goal", "clarity", "energy", "--out", str(out), key=server.key)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any(LINE.match(line) for line in lines), run.stdout
    assert lines[-1].startswith("[20.0s] session.ended client_shutdown, billed 20.0 s")
    assert "sent 20.0/20.0 s" in run.stderr  # the final progress line (stderr is not a TTY here)

    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert events[0]["type"] == "session.ready" and events[-1]["type"] == "session.ended"
    assert events[-1]["data"]["billed_seconds"] == pytest.approx(SECONDS, abs=0.1)
    assert len(events) == len(lines)
    stored = server.data_dir / "timelines" / f"{events[0]['data']['session_id']}.jsonl"
    assert [json.loads(line) for line in stored.read_text().splitlines()] == events  # same envelopes

    png, html = tmp_path / "r.png", tmp_path / "r.html"
    rep = cli("report", str(out), "--png", str(png), "--html", str(html))
    assert rep.returncode == 0, rep.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 30_000
    page = html.read_text()
    detected = [e["data"] for e in events if e["type"] == "signal.detected"]
    assert detected
    for d in detected:
        assert f">{d['signal_type']}<" in page
    tl = load(out)
    assert tl.signals == sorted({d["signal_type"] for d in detected}, key=tl.signals.index)
    assert tl.cqi_windows and tl.engagement and tl.ended is not None


def test_library_session(server, clip_file):
    chunks = webm_chunks(clip_file.read_bytes())

    async def main():
        async with connect(server.url, server.key, subprotocol=True) as session:
            ready = await session.wait_ready()
            await session.configure(include=["conversation_quality_timeline"])
            for chunk in chunks:
                await session.send(chunk.data)
            result = await session.close()
            return ready, result, [e async for e in session]

    ready, result, events = asyncio.run(asyncio.wait_for(main(), 120))
    assert ready.session_id and ready.max_segment_size_bytes > 0
    assert result.ok and result.ended.billed_seconds == pytest.approx(SECONDS, abs=0.1)
    assert [e.type for e in events][:2] == ["session.ready", "session.updated"]
    assert any(isinstance(e, SignalDetected) and e.rationale for e in events)
    cq = [e for e in events if e.type == "conversation_quality.updated"]
    assert cq and all(e.timeline and e.overall is None for e in cq)


def test_bad_key(server, clip_file):
    async def main():
        await connect(server.url, "i1s_not_a_key")

    with pytest.raises(AuthenticationError):
        asyncio.run(main())
    run = cli("stream", str(clip_file), "--url", server.url, "--key", "i1s_not_a_key", "--pace", "fast")
    assert run.returncode == 2 and "401" in run.stderr


def test_a_session_closed_by_an_error_exits_non_zero(server, clip_file, tmp_path):
    cut = tmp_path / "cut.webm"
    data = clip_file.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # ends inside an element: ih5004 after analysing what decoded
    run = cli("stream", str(cut), "--url", server.url, "--pace", "fast", key=server.key)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "error ih5004" in run.stdout and "closed by error ih5004" in run.stderr


def test_realtime_pace_takes_media_time(server, tmp_path):
    path = tmp_path / "short.webm"
    path.write_bytes(encode_webm(default_script(3.0), width=160, height=120, fps=10))
    start = time.monotonic()
    run = cli("stream", str(path), "--url", server.url, "--quiet", key=server.key)
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - start >= 2.7
    assert run.stdout == ""


def test_mp4_input_is_transcoded_and_fully_analysed(server, tmp_path):
    path = tmp_path / "talk.mp4"
    path.write_bytes(encode_mp4(10.0))
    out = tmp_path / "mp4.jsonl"
    run = cli("stream", str(path), "--url", server.url, "--pace", "fast", "--out", str(out), key=server.key)
    assert run.returncode == 0, run.stderr
    assert "transcode to WebM (vp8 + opus)" in run.stderr
    ended = json.loads(out.read_text().splitlines()[-1])
    assert ended["type"] == "session.ended" and ended["data"]["dropped_ranges"] == []
    assert ended["data"]["billed_seconds"] == pytest.approx(10.0, abs=0.2)
    assert "signal.detected" in run.stdout
