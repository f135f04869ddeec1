"""Several frontends share the port; SIGHUP replaces workers and frontends without dropping sessions."""

import asyncio
import json
import signal
import time

from harness import assert_well_formed, chunks_of, stream_session


def _opened_by(srv) -> dict[str, int]:
    pids = {}
    for line in srv.log_path.read_text().splitlines():
        if '"session opened"' in line:
            entry = json.loads(line)
            pids[entry["session"]] = entry["pid"]
    return pids


def _ready_frontends(srv) -> set[int]:
    return {json.loads(line)["pid"] for line in srv.log_path.read_text().splitlines() if '"frontend ready"' in line}


def test_sessions_spread_over_frontends_sharing_the_port(fresh_server, clip):
    srv = fresh_server(frontends=2)
    # /readyz answers as soon as one frontend serves: wait until both are listening
    deadline = time.monotonic() + 60
    while len(_ready_frontends(srv)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_ready_frontends(srv)) == 2, srv.log_tail()
    assert len(srv.children()["frontend"]) == 2, srv.log_tail()
    assert "child exited" not in srv.log_path.read_text(), srv.log_tail()

    async def many():
        return await asyncio.gather(*[stream_session(srv.url, srv.key, chunks_of(clip[:200_000], 50_000))
                                      for _ in range(12)])

    records = asyncio.run(many())
    sids = [r.events[0]["data"]["session_id"] for r in records]
    used = {pid for sid, pid in _opened_by(srv).items() if sid in sids}
    assert len(used) == 2, "SO_REUSEPORT spreads sessions over both frontends"
    assert "child exited" not in srv.log_path.read_text(), srv.log_tail()


def test_sighup_reload_keeps_live_sessions(fresh_server, clip):
    srv = fresh_server()
    before = {role: [p.pid for p in procs] for role, procs in srv.children().items()}
    n = 100
    chunks = chunks_of(clip, -(-len(clip) // n))

    async def run():
        async def reload():
            await asyncio.sleep(6.0)
            srv.proc.send_signal(signal.SIGHUP)
        r = asyncio.create_task(reload())
        record = await stream_session(srv.url, srv.key, chunks, pace_seconds=0.3)
        await r
        return record

    record = asyncio.run(run())
    assert record.close_code == 1000, srv.log_tail()
    assert_well_formed(record)
    ended = record.ended["data"]
    assert ended["reason"] == "client_shutdown", "the session outlived the reload of its frontend"
    assert abs(ended["billed_seconds"] + sum(d["end"] - d["start"] for d in ended["dropped_ranges"]) - 30.0) < 0.1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = {role: [p.pid for p in procs] for role, procs in srv.children().items()}
        if set(now.get("frontend", [])).isdisjoint(before["frontend"]) and \
                set(now.get("worker", [])).isdisjoint(before["worker"]):
            break
        time.sleep(0.3)
    assert set(now["frontend"]).isdisjoint(before["frontend"]), "old frontend retired after its last session"
    assert set(now["worker"]).isdisjoint(before["worker"])
    assert now["sequencer"] == before["sequencer"]
    after = asyncio.run(stream_session(srv.url, srv.key, chunks_of(clip, 100_000)))
    assert after.close_code == 1000
