"""Backlog, shedding, backpressure, killed processes and shutdown, on a real server."""

import asyncio
import os
import signal
import sqlite3
import time

from harness import ServerProcess, assert_well_formed, chunks_of, stream_session

from inter1srv.sequencer.ranges import complement, total, union


def _ranges(wire):
    return [(r["start"], r["end"]) for r in wire]


def _live_chunks(clip: bytes, seconds: float, slice_s: float = 0.25):
    n = int(seconds / slice_s)
    size = -(-len(clip) // n)
    return chunks_of(clip, size), slice_s


def _pause_workers(srv, pause_at: float, pause_for: float):
    async def pauser():
        await asyncio.sleep(pause_at)
        workers = srv.children()["worker"]
        for w in workers:
            w.send_signal(signal.SIGSTOP)
        await asyncio.sleep(pause_for)
        for w in workers:
            w.send_signal(signal.SIGCONT)
    return pauser


def _check_billing(srv, record, duration):
    ended = record.ended["data"]
    analyzed, dropped = _ranges(ended["analyzed_ranges"]), _ranges(ended["dropped_ranges"])
    assert abs(ended["billed_seconds"] - total(analyzed)) < 1e-3
    assert not complement(analyzed + dropped, 0, duration - 0.05), "analysed + dropped must cover the stream"
    assert abs(total(analyzed) + total(dropped) - total(union(analyzed + dropped))) < 1e-3, "no overlap"
    reported = union([r for e in record.of("coverage.dropped") for r in _ranges(e["data"]["ranges"])])
    assert abs(total(reported) - total(dropped)) < 1e-3, "every dropped second was reported"
    sid = record.events[0]["data"]["session_id"]
    db = sqlite3.connect(srv.data_dir / "ledger.sqlite3")
    (billed,) = db.execute("SELECT billed_seconds FROM sessions WHERE session_id = ?", (sid,)).fetchone()
    windows = db.execute("SELECT start_s, end_s FROM billed_windows WHERE session_id = ?", (sid,)).fetchall()
    assert billed == ended["billed_seconds"] == round(total(windows), 3)
    return ended


def test_live_session_with_paused_workers_sheds_and_reports(server, clip):
    chunks, pace = _live_chunks(clip, 30.0)

    async def run():
        pause = asyncio.create_task(_pause_workers(server, 6.0, 16.0)())
        record = await stream_session(server.url, server.key, chunks, pace_seconds=pace)
        await pause
        return record

    record = asyncio.run(run())
    assert record.close_code == 1000, server.log_tail()
    assert_well_formed(record)
    ended = _check_billing(server, record, 30.0)
    assert record.of("coverage.dropped"), "a live session under backlog must shed and say so"
    assert 0 < ended["billed_seconds"] < 30.0


def test_fast_client_is_slowed_not_shed(server, clip):
    async def run():
        pause = asyncio.create_task(_pause_workers(server, 0.5, 8.0)())
        record = await stream_session(server.url, server.key, [clip])
        await pause
        return record

    record = asyncio.run(run())
    assert record.close_code == 1000
    ended = _check_billing(server, record, 30.0)
    assert not record.of("coverage.dropped")
    assert ended["dropped_ranges"] == []
    assert abs(ended["billed_seconds"] - 30.0) < 0.2


def test_killed_worker_mid_session_is_replaced_and_session_finishes(fresh_server, clip):
    srv = fresh_server(workers=2)

    killed: list[int] = []

    async def kill_a_worker(event, ws):
        # at the first analysis result, so the kill lands mid-session however fast the box is
        if not killed and not event["type"].startswith("session."):
            worker = srv.children()["worker"][0]
            killed.append(worker.pid)
            worker.send_signal(signal.SIGKILL)

    record = asyncio.run(stream_session(srv.url, srv.key, chunks_of(clip, 20_000), pace_seconds=0.05,
                                        on_event=kill_a_worker))
    assert killed, "a worker was killed before the session ended"
    assert record.close_code == 1000, srv.log_tail()
    assert_well_formed(record)
    _check_billing(srv, record, 30.0)

    def live_workers() -> list[int]:  # the killed pid may linger until the supervisor reaps it
        return [w.pid for w in srv.children().get("worker", []) if w.pid not in killed]

    deadline = time.monotonic() + 120
    while len(live_workers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(live_workers()) == 2, "the supervisor restarts the dead worker\n" + srv.log_tail(40)


def _segments(pid: int) -> list[str]:
    return [n for n in os.listdir("/dev/shm") if n.startswith(f"i1s.{pid}.")]


def test_killed_server_leaves_no_segment_after_next_start(tmp_path, clip):
    srv = ServerProcess(tmp_path / "data").start()

    async def open_and_kill():
        import websockets

        async with websockets.connect(srv.url, additional_headers={"Authorization": f"Bearer {srv.key}"}) as ws:
            await ws.recv()
            await ws.send(clip[:100_000])
            await asyncio.sleep(1.0)
            assert _segments(srv.proc.pid), "a session's ring lives in /dev/shm"
            srv.kill_all()

    try:
        asyncio.run(open_and_kill())
    except Exception:  # the connection dies with the server
        pass
    dead_pid = srv.proc.pid
    assert _segments(dead_pid), "kill -9 leaves the segment behind until the next start"
    again = ServerProcess(tmp_path / "data2").start()
    try:
        assert _segments(dead_pid) == []
    finally:
        again.stop()


def test_sigterm_drains_sessions_with_server_shutdown(fresh_server, clip):
    srv = fresh_server()
    chunks, pace = _live_chunks(clip, 30.0)

    async def run():
        async def stopper():
            await asyncio.sleep(5.0)
            srv.proc.send_signal(signal.SIGTERM)
        s = asyncio.create_task(stopper())
        record = await stream_session(srv.url, srv.key, chunks, pace_seconds=pace)
        await s
        return record

    record = asyncio.run(run())
    assert record.ended is not None, record.events[-3:]
    assert record.ended["data"]["reason"] == "server_shutdown"
    assert record.ended["data"]["billed_seconds"] > 0
    assert srv.proc.wait(timeout=60) == 0
    assert _segments(srv.proc.pid) == []


def test_hung_worker_is_killed_by_the_watchdog_and_its_windows_retried(fresh_server, clip):
    srv = fresh_server(watchdog_seconds=3)
    hung = srv.children()["worker"][0]

    async def run():
        async def hang():
            await asyncio.sleep(0.3)
            hung.send_signal(signal.SIGSTOP)  # a GPU/model that never returns looks like this
        h = asyncio.create_task(hang())
        record = await stream_session(srv.url, srv.key, [clip])  # a fast client: nothing may be shed
        await h
        return record

    started = time.monotonic()
    record = asyncio.run(run())
    assert record.close_code == 1000, srv.log_tail()
    ended = _check_billing(srv, record, 30.0)
    assert ended["dropped_ranges"] == [] and abs(ended["billed_seconds"] - 30.0) < 0.2
    assert not hung.is_running() or hung.status() == "zombie"
    assert hung.pid not in [w.pid for w in srv.children()["worker"]]
    assert "watchdog" in srv.log_tail(200)
    assert time.monotonic() - started < 60
