"""Abusive clients on a real server: floods, idle connections, a reader that stops, a codec change.

Each abusive client must be bounded and cut off with a clear code while an honest session on
the same server runs to the end with exact billing.
"""

import asyncio
import json
import socket
import sqlite3
import time

import websockets
from harness import assert_well_formed, chunks_of, stream_session

from inter1srv.sequencer.ranges import total
from inter1srv.synthmedia import default_script, encode_webm

CONNECT = {"max_size": None, "compression": None}
TRACKS_ID = bytes.fromhex("1654AE6B")


def _headers(key: str) -> dict:
    return {"additional_headers": {"Authorization": f"Bearer {key}"}}


def _shm_released(srv, within: float = 10.0) -> bool:
    """Rings are unlinked when the server has finished with the session, just after its close."""
    deadline = time.monotonic() + within
    while srv.shm_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    return srv.shm_bytes() == 0


def _log_entries(srv) -> list[dict]:
    out = []
    for line in srv.log_tail(1000).splitlines():
        try:
            entry = json.loads(line[line.index("{"):])
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def _private_bytes(proc) -> int:
    """Resident memory not shared (the honest session's ring pages are shared memory: left out)."""
    mem = proc.memory_info()
    return mem.rss - mem.shared


def _honest_session_billed_fully(srv, record, seconds: float = 30.0) -> None:
    assert record.close_code == 1000, (record.close_code, record.events[-3:], srv.log_tail())
    assert_well_formed(record)
    ended = record.ended["data"]
    assert ended["dropped_ranges"] == []
    assert abs(ended["billed_seconds"] - seconds) < 0.2
    sid = record.events[0]["data"]["session_id"]
    db = sqlite3.connect(srv.data_dir / "ledger.sqlite3")
    (billed,) = db.execute("SELECT billed_seconds FROM sessions WHERE session_id = ?", (sid,)).fetchone()
    assert billed == ended["billed_seconds"]


async def _until_closed(ws) -> tuple[list[dict], int | None]:
    events = []
    try:
        async for message in ws:
            events.append(json.loads(message))
    except websockets.ConnectionClosed:
        pass
    return events, ws.close_code


def test_flood_of_tiny_frames_and_of_text_is_cut_off_with_ih4029(fresh_server, clip):
    srv = fresh_server(max_messages_per_second=200, max_message_burst=400,
                       max_text_messages_per_second=10, max_text_message_burst=20)

    async def tiny_frames():
        async with websockets.connect(srv.url, **CONNECT, **_headers(srv.key)) as ws:
            await ws.recv()  # session.ready
            cut, started, i = False, time.monotonic(), 0
            try:
                while time.monotonic() - started < 30:  # a flood goes on until the server stops it
                    await ws.send(clip[i % len(clip):i % len(clip) + 1])
                    i += 1
                    if i % 100 == 0:
                        await asyncio.sleep(0)
            except websockets.ConnectionClosed:
                cut = True
            events, code = await _until_closed(ws)
            return cut, events, code

    async def text_flood():
        async with websockets.connect(srv.url, **CONNECT, **_headers(srv.key)) as ws:
            await ws.recv()
            try:
                for _ in range(500):
                    await ws.send(json.dumps({"type": "session.configure", "include": ["feedback"]}))
            except websockets.ConnectionClosed:
                pass
            return await _until_closed(ws)

    async def run():
        honest = asyncio.create_task(stream_session(srv.url, srv.key, chunks_of(clip, 65536)))
        await asyncio.sleep(0.5)
        frames = await tiny_frames()
        texts = await text_flood()
        return frames, texts, await honest

    (cut, frame_events, frame_code), (text_events, text_code), record = asyncio.run(run())
    for events, code in ((frame_events, frame_code), (text_events, text_code)):
        errors = [e["data"] for e in events if e["type"] == "error"]
        assert [e["code"] for e in errors] == ["ih4029"], events[-3:]
        assert "flood" in errors[0]["message"]
        assert code == 1008
    assert cut, "the server stopped the flood"
    assert sum(e["type"] == "session.updated" for e in text_events) <= 20, "no event past the limit"
    _honest_session_billed_fully(srv, record)
    assert srv.metric("inter1srv_floods_total") == 2


def test_many_idle_connections_hold_no_shared_memory(fresh_server, clip):
    idle_n = 40
    srv = fresh_server(max_sessions=idle_n + 4, session_idle_timeout_seconds=6)
    frontend = srv.children()["frontend"][0]

    async def run():
        rss_before = frontend.memory_info().rss
        sockets = []
        for _ in range(idle_n):
            ws = await websockets.connect(srv.url, **CONNECT, **_headers(srv.key))
            assert json.loads(await ws.recv())["type"] == "session.ready"
            sockets.append(ws)
        held = {"shm": srv.shm_bytes(), "rss": frontend.memory_info().rss - rss_before}
        record = await stream_session(srv.url, srv.key, chunks_of(clip, 65536))
        idle_ends = await asyncio.gather(*[_until_closed(ws) for ws in sockets])
        return held, record, idle_ends

    held, record, idle_ends = asyncio.run(run())
    assert held["shm"] == 0, "an idle connection must not hold a media ring"
    assert held["rss"] < idle_n * 1_000_000, f"{held['rss'] / idle_n:.0f} B of frontend RSS per idle connection"
    _honest_session_billed_fully(srv, record)
    for events, code in idle_ends:
        assert [e["data"]["code"] for e in events if e["type"] == "error"] == ["ih6003"]
        assert events[-1]["type"] == "session.ended" and events[-1]["data"]["billed_seconds"] == 0
        assert code == 1000
    assert _shm_released(srv)


def test_a_client_that_stops_reading_is_cut_off_over_a_real_socket(fresh_server, clip):
    srv = fresh_server(slow_reader_seconds=2, max_text_messages_per_second=0, max_messages_per_second=0,
                       event_send_buffer_bytes=16384)
    frontend = srv.children()["frontend"][0]

    async def stuck_reader():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        host, port = srv.base.split(":")
        sock.connect((host, int(port)))
        sock.setblocking(False)
        # max_queue=1: the client library stops reading the socket as soon as one event waits
        ws = await websockets.connect(srv.url, sock=sock, max_queue=1, **CONNECT, **_headers(srv.key))
        private_before = _private_bytes(frontend)
        sent, cut_at = 0, None
        started = time.monotonic()
        try:
            while time.monotonic() - started < 60:
                # every configure makes the server send a session.updated the client never reads
                await asyncio.wait_for(ws.send(json.dumps({"type": "session.configure", "include": ["feedback"],
                                                           "goal_dimensions": ["clarity"] * 50})), 5)
                sent += 1
                await asyncio.sleep(0.002)
        except (websockets.ConnectionClosed, TimeoutError, OSError):
            cut_at = time.monotonic() - started
        growth = _private_bytes(frontend) - private_before
        ws.transport.abort()
        return sent, cut_at, growth

    async def run():
        honest = asyncio.create_task(stream_session(srv.url, srv.key, chunks_of(clip, 65536)))
        stuck = await stuck_reader()
        return stuck, await honest

    (sent, cut_at, private_growth), record = asyncio.run(run())
    assert cut_at is not None and cut_at < 30, f"never cut off ({sent} messages sent)"
    assert srv.metric("inter1srv_slow_readers_total") == 1
    assert "slow reader cut off" in srv.log_tail(400)
    # what the server held for it at the cut: its unsent events (the kernel buffer is fixed, the
    # WebSocket layer keeps one frame); the frontend's own memory also moves with the honest session
    pending = [entry.get("pending_events") for entry in _log_entries(srv) if entry.get("msg") == "slow reader cut off"]
    assert pending and pending[0] <= sent, pending
    assert private_growth < 200_000_000, private_growth
    _honest_session_billed_fully(srv, record)


def test_mid_stream_codec_change_ends_only_that_session(fresh_server, clip):
    srv = fresh_server()
    script = default_script(12.0)
    vp8 = encode_webm(script, width=320, height=240, fps=15)
    vp9 = encode_webm(script, width=320, height=240, fps=15, video_codec="libvpx-vp9")
    switched = vp8 + vp9[vp9.index(TRACKS_ID):]  # new Tracks (VP9) + VP9 clusters, no new EBML header

    async def run():
        return await asyncio.gather(
            stream_session(srv.url, srv.key, chunks_of(switched, 4096), pace_seconds=0.01),
            stream_session(srv.url, srv.key, chunks_of(clip, 65536)),
        )

    changed, honest = asyncio.run(run())
    errors = [e["data"] for e in changed.of("error")]
    assert [e["code"] for e in errors] == ["ih5004"] and "codec change" in errors[0]["message"]
    assert changed.close_code == 1007
    sid = changed.events[0]["data"]["session_id"]
    db = sqlite3.connect(srv.data_dir / "ledger.sqlite3")
    windows = db.execute("SELECT start_s, end_s FROM billed_windows WHERE session_id = ?", (sid,)).fetchall()
    assert total(windows) <= 12.0 + 1e-6, "nothing past the VP8 part is billed"
    _honest_session_billed_fully(srv, honest)
    assert _shm_released(srv)
