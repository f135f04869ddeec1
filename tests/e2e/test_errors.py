"""Every row of PROTOCOL.md's error table, provoked against a real server."""

import asyncio
import json
import signal
import time

import pytest
import websockets
from harness import chunks_of, stream_session
from websockets.exceptions import InvalidStatus

from inter1srv.synthmedia import Script, Segment, encode_webm


@pytest.fixture
def limits_server(_limits_server):
    """The module's server once the previous test's sessions have ended (it holds only 2)."""
    import json
    import time
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://{_limits_server.base}/readyz", timeout=2) as r:
            if json.loads(r.read())["sessions"] == 0:
                break
        time.sleep(0.1)
    return _limits_server


@pytest.fixture(scope="module")
def _limits_server(tmp_path_factory):
    from harness import ServerProcess

    srv = ServerProcess(
        tmp_path_factory.mktemp("limits") / "data",
        max_sessions=2,
        session_idle_timeout_seconds=2,
        session_max_duration_seconds=6,
        max_segment_size_bytes=1024 * 1024,
    ).start()
    yield srv
    srv.stop()


def _errors(record):
    return [(e["data"]["code"], e["data"]["segment"]) for e in record.of("error")]


def test_wrong_or_missing_credential_is_refused_with_401(limits_server):
    async def connect(headers=None, subprotocols=None):
        async with websockets.connect(limits_server.url, additional_headers=headers or {},
                                      subprotocols=subprotocols):
            pass

    for kwargs in ({}, {"headers": {"Authorization": "Bearer i1s_wrong"}},
                   {"headers": {"Authorization": f"Basic {limits_server.key}"}},
                   {"subprotocols": ["access_token", "i1s_wrong"]}):
        with pytest.raises(InvalidStatus) as info:
            asyncio.run(connect(**kwargs))
        assert info.value.response.status_code == 401


def test_bad_json_and_unknown_messages_keep_the_session_open(limits_server, clip):
    async def run():
        async with websockets.connect(limits_server.url,
                                      additional_headers={"Authorization": f"Bearer {limits_server.key}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.ready"
            replies = []
            for text in ("not json", '{"type": "dance"}', '{"include": ["everything"]}',
                         '{"include": ["conversation_quality"], "goal_dimensions": ["energy"]}'):
                await ws.send(text)
                replies.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"type": "session.close"}))
            async for message in ws:
                replies.append(json.loads(message))
            return replies, ws.close_code

    replies, code = asyncio.run(run())
    assert [r.get("code") for r in replies[:3]] == ["ih4000", "ih4000", "ih6001"]
    assert replies[3]["type"] == "session.updated"
    assert replies[3]["data"] == {"include": ["conversation_quality_overall", "conversation_quality_timeline"],
                                  "goal_dimensions": ["energy"], "model": None}
    assert replies[-1]["type"] == "session.ended" and code == 1000


def test_garbage_bytes_are_ih5004_close_1007(limits_server):
    record = asyncio.run(stream_session(limits_server.url, limits_server.key, [b"\x00garbage" * 100]))
    assert _errors(record) == [("ih5004", 0)]
    assert record.close_code == 1007


def test_truncated_stream_is_ih5004_close_1007_after_analysis(limits_server, clip):
    cut = clip[: len(clip) // 3 + 7]
    record = asyncio.run(stream_session(limits_server.url, limits_server.key, chunks_of(cut, 50_000)))
    assert "ih5004" in [c for c, _ in _errors(record)]
    assert record.close_code == 1007
    assert record.ended is not None and record.ended["data"]["billed_seconds"] > 0


def test_oversize_frame_is_ih6002_close_1009(limits_server, clip):
    record = asyncio.run(stream_session(limits_server.url, limits_server.key, [clip[:1000], b"\x00" * (1024 * 1024 + 1)]))
    assert _errors(record) == [("ih6002", 1)]
    assert record.close_code == 1009


def test_idle_timeout_is_ih6003_then_session_ended(limits_server, clip):
    record = asyncio.run(stream_session(limits_server.url, limits_server.key, [clip[:150_000]], close=False))
    assert "ih6003" in [c for c, _ in _errors(record)]
    assert record.ended["data"]["reason"] == "idle_timeout"
    assert record.close_code == 1000


def test_max_duration_is_ih6004_then_session_ended(limits_server, clip):
    # 40 chunks 0.25 s apart: media keeps coming for 10 s, past the 6 s limit, whatever the clip's size
    record = asyncio.run(stream_session(limits_server.url, limits_server.key, chunks_of(clip, -(-len(clip) // 40)),
                                        pace_seconds=0.25, close=False))
    assert "ih6004" in [c for c, _ in _errors(record)]
    assert record.ended["data"]["reason"] == "max_duration"
    assert record.close_code == 1000


def test_audio_only_stream_is_ih5001_and_stays_open(limits_server):
    audio_only = encode_webm(Script([Segment(6.0, speech=True)]), video=False)
    record = asyncio.run(stream_session(limits_server.url, limits_server.key, chunks_of(audio_only, 10_000)))
    assert "ih5001" in [c for c, _ in _errors(record)]
    assert record.close_code == 1000
    assert record.ended["data"]["billed_seconds"] > 5


def test_no_capacity_is_ih1003_close_1013(limits_server, clip):
    async def run():
        headers = {"Authorization": f"Bearer {limits_server.key}"}
        async with websockets.connect(limits_server.url, additional_headers=headers) as a, \
                websockets.connect(limits_server.url, additional_headers=headers) as b:
            await a.recv()
            await b.recv()
            async with websockets.connect(limits_server.url, additional_headers=headers) as c:
                first = json.loads(await c.recv())
                with pytest.raises(websockets.ConnectionClosed):
                    await c.recv()
                return first, c.close_code

    first, code = asyncio.run(run())
    assert first["type"] == "error" and first["data"]["code"] == "ih1003"
    assert code == 1013


def test_sequencer_loss_is_ih1001_close_1011(fresh_server, clip):
    srv = fresh_server()

    async def run():
        async def kill_sequencer_once(event, _ws):
            if event["type"] == "session.ready":
                await asyncio.sleep(1.0)
                for proc in srv.children()["sequencer"]:
                    proc.send_signal(signal.SIGKILL)

        return await stream_session(srv.url, srv.key, chunks_of(clip, -(-len(clip) // 40)), pace_seconds=0.1,
                                    on_event=kill_sequencer_once)

    record = asyncio.run(run())
    assert ("ih1001", None) in _errors(record)
    assert record.close_code == 1011
    deadline = time.monotonic() + 60
    while not srv.ready() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert srv.ready(), "the supervisor restarts the sequencer and the server serves again"
