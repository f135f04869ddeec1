"""``POST /v1/upload/analyze`` against a real server: the official SDK, other containers, every error."""

from __future__ import annotations

import asyncio
import io
import time
from fractions import Fraction

import httpx
import pytest
from harness import stream_session
from interhumanai import InterhumanClient
from interhumanai.errors import InterhumanAPIError
from interhumanai.types import AnalysisResult, GoalDimension, IncludeFlag

from inter1srv.frontend.report import build_report
from inter1srv.synthmedia import default_script, encode_webm, synth_audio, synth_frame

GOALS = ["clarity", "energy"]


def _encode_container(seconds: float, fmt: str) -> bytes:
    """The e2e script as H.264 + AAC in MP4 / Matroska (what phones and editors produce)."""
    import av

    script = default_script(seconds)
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=fmt)
    v = out.add_stream("libx264", rate=15)
    v.width, v.height, v.pix_fmt = 320, 240, "yuv420p"
    v.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
    a = out.add_stream("aac", rate=48000)
    a.codec_context.layout = "mono"
    samples = synth_audio(script)
    for i in range(int(seconds * 15)):
        frame = av.VideoFrame.from_ndarray(synth_frame(script, i / 15, 320, 240), format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, 15)
        out.mux(v.encode(frame))
    out.mux(v.encode(None))
    for start in range(0, len(samples), 1024):
        chunk = samples[start:start + 1024]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
        out.mux(a.encode(frame))
    out.mux(a.encode(None))
    out.close()
    return buf.getvalue()


def _round(value, nd=2):
    if isinstance(value, float):
        return round(value, nd)
    if isinstance(value, dict):
        return {k: _round(v, nd) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, nd) for v in value]
    return value


def _close_cqi(a: dict, b: dict, tolerance: float = 10.0) -> None:
    pairs = [(a["overall"], b["overall"])]
    assert [(e["start"], e["end"]) for e in a["timeline"]] == [(e["start"], e["end"]) for e in b["timeline"]]
    pairs += [(x["values"], y["values"]) for x, y in zip(a["timeline"], b["timeline"], strict=True)]
    for x, y in pairs:
        assert x.keys() == y.keys()
        assert all(abs(x[k] - y[k]) <= tolerance for k in x), (x, y)


async def _sdk_upload(server, data: bytes, filename: str = "clip.webm") -> AnalysisResult:
    client = InterhumanClient(access_token=server.key, base_url=f"http://{server.base}")
    return await client.upload.analyze(
        data, filename=filename,
        include=[IncludeFlag.CONVERSATION_QUALITY_OVERALL, IncludeFlag.CONVERSATION_QUALITY_TIMELINE],
        goal_dimensions=[GoalDimension(g) for g in GOALS],
    )


def _post(server, files=None, data=None, key=None, headers=None, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or server.key}", **(headers or {})}
    return httpx.post(f"http://{server.base}/v1/upload/analyze", headers=headers, files=files, data=data,
                      timeout=120, **kwargs)


def test_sdk_upload_matches_streaming_the_same_file(server, clip):
    config = {"include": ["conversation_quality"], "goal_dimensions": GOALS}
    record = asyncio.run(stream_session(server.url, server.key, [clip], config=config))  # as the SDK example sends
    assert record.close_code == 1000
    streamed = build_report(record.events, media_end=record.ended["t"],
                            include={"conversation_quality_overall", "conversation_quality_timeline"},
                            goal_dimensions=GOALS)
    result = asyncio.run(_sdk_upload(server, clip))
    raw = _post(server, files={"file": ("clip.webm", clip, "video/webm")},
                data={"include[]": ["conversation_quality_overall", "conversation_quality_timeline"],
                      "goal_dimensions[]": GOALS}).json()
    assert abs(raw["billed_seconds"] - 30.0) < 0.2 and raw["dropped_ranges"] == []
    assert raw["signals"], "the clip's lively parts raise signals"
    for key in ("signals", "engagement_state"):
        assert _round(raw[key]) == _round(streamed[key]), key
    # CQI: the same slices; values within a few points (the cue model's face cues are not bit-stable
    # from run to run: two streams of the same file differ as much)
    _close_cqi(raw["conversation_quality"], streamed["conversation_quality"])
    assert raw["feedback"]["type"] == streamed["feedback"]["type"] == "feedback"
    # the SDK parses the same answer into its typed result
    assert [(s.type.value, s.start, s.end, s.probability.value) for s in result.signals] == [
        (s["type"], s["start"], s["end"], s["probability"]) for s in raw["signals"]]
    assert result.feedback is not None and result.feedback.type == "feedback"
    assert result.conversation_quality is not None and result.conversation_quality.timeline
    assert [e.state.value for e in result.engagement_state] == [e["state"] for e in raw["engagement_state"]]


@pytest.mark.parametrize("fmt,name", [("mp4", "clip.mp4"), ("matroska", "clip.mkv")])
def test_other_containers_go_through_the_container_demuxer(server, clip, fmt, name):
    data = _encode_container(30.0, fmt)
    result = asyncio.run(_sdk_upload(server, data, filename=name))
    raw = _post(server, files={"file": (name, data, "application/octet-stream")}).json()
    assert abs(raw["duration_seconds"] - 30.0) < 0.3, raw["duration_seconds"]
    assert abs(raw["billed_seconds"] - 30.0) < 0.3 and raw["warnings"] == [], (raw["billed_seconds"], raw["dropped_ranges"],
                                                                              raw["warnings"])
    assert result.signals and result.engagement_state
    assert "conversation_quality" not in raw and "feedback" not in raw  # only when asked
    webm = _post(server, files={"file": ("clip.webm", clip, "video/webm")}).json()
    assert {s["type"] for s in raw["signals"]} & {s["type"] for s in webm["signals"]}


def test_upload_errors(server):
    short = encode_webm(default_script(2.0), width=320, height=240, fps=15)
    cases = [
        (_post(server, files={"file": ("a.webm", short, "video/webm")}, key="i1s_wrong"), 401, "ih1002"),
        (_post(server, data={"include[]": ["conversation_quality_overall"]}, files={"x": ("a", b"1", "a/b")}),
         400, "ih4001"),
        (_post(server, files={"file": ("a.webm", short, "video/webm")}, data={"include[]": ["bogus"]}), 400, "ih4001"),
        (_post(server, content=b"not a form", headers={"Content-Type": "text/plain"}), 400, "ih4001"),
        (_post(server, files={"file": ("a.avi", b"RIFF\x00\x00\x00\x00AVI LIST" * 100, "video/avi")}), 415, "ih4015"),
        (_post(server, files={"file": ("a.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 5000, "video/mp4")}),
         415, "ih5004"),
        (_post(server, files={"file": ("a.webm", short, "video/webm")}), 422, "ih4022"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (status, response.text)
        body = response.json()
        assert body["error_id"] == code and body["message"], body


def test_upload_size_limit_and_capacity(fresh_server, clip):
    srv = fresh_server(max_upload_bytes=200_000, max_sessions=1)
    big = _post(srv, files={"file": ("clip.webm", clip[:600_000], "video/webm")})
    assert big.status_code == 413 and big.json()["error_id"] == "ih4013"
    huge = _post(srv, files={"file": ("clip.webm", clip, "video/webm")})  # over the body limit itself
    assert huge.status_code == 413 and huge.json()["error_id"]
    with pytest.raises(InterhumanAPIError) as info:
        asyncio.run(_sdk_upload(srv, clip[:600_000]))
    assert info.value.status == 413 and info.value.error_id == "ih4013"
    small = encode_webm(default_script(5.0), width=160, height=120, fps=10)
    assert len(small) < 200_000

    async def busy():
        import websockets

        async with websockets.connect(srv.url, additional_headers={"Authorization": f"Bearer {srv.key}"}) as ws:
            await ws.recv()  # session.ready: the only session slot is taken
            response = await asyncio.to_thread(_post, srv, files={"file": ("s.webm", small, "video/webm")})
            await ws.send('{"type": "session.close"}')
            return response

    response = asyncio.run(busy())
    assert response.status_code == 503 and response.json()["error_id"] == "ih1003"
    deadline = time.monotonic() + 10
    while not srv.ready() and time.monotonic() < deadline:  # the streaming session is gone
        time.sleep(0.05)
    ok = _post(srv, files={"file": ("s.webm", small, "video/webm")})
    assert ok.status_code == 200, ok.text


def test_an_upload_whose_client_disconnects_is_cancelled_and_not_billed(server, clip):
    """Results reach an upload's client only in the answer: a client gone before it pays nothing."""
    import socket
    import sqlite3

    request = httpx.Request("POST", f"http://{server.base}/v1/upload/analyze",
                            headers={"Authorization": f"Bearer {server.key}"},
                            files={"file": ("clip.webm", clip, "video/webm")})
    head = "POST /v1/upload/analyze HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    db_path = server.data_dir / "ledger.sqlite3"
    before = {r[0] for r in sqlite3.connect(db_path).execute("SELECT session_id FROM sessions")}
    host, port = server.base.split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + b"\r\n" + request.read())
        time.sleep(0.3)  # the body is in; analysis has just started
    deadline, row = time.monotonic() + 30, None
    while row is None and time.monotonic() < deadline:
        rows = sqlite3.connect(db_path).execute(
            "SELECT session_id, reason, billed_seconds FROM sessions WHERE session_id LIKE 'upl_%'").fetchall()
        row = next((r for r in rows if r[0] not in before), None)
        time.sleep(0.2)
    assert row is not None, server.log_tail()
    sid, reason, billed = row
    assert reason == "client_disconnect" and billed == 0, row
    windows = sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM billed_windows WHERE session_id = ?",
                                               (sid,)).fetchone()[0]
    assert windows == 0
    # the server is fine: the next upload is analysed and billed in full
    assert _post(server, files={"file": ("clip.webm", clip, "video/webm")}).json()["billed_seconds"] > 29
