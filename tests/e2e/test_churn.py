"""Connection churn: many short sessions, clean and abrupt, leave nothing behind."""

import asyncio
import json
import os
import sqlite3
import time

import websockets

CHURN_SESSIONS = int(os.environ.get("INTER1SRV_CHURN_SESSIONS", "240"))


def test_connection_churn_leaks_nothing(server, clip):
    frontend = server.children()["frontend"][0]
    headers = {"Authorization": f"Bearer {server.key}"}
    head = clip[:40_000]

    async def one(i: int) -> str:
        async with websockets.connect(server.url, additional_headers=headers, compression=None) as ws:
            ready = json.loads(await ws.recv())
            if i % 3 == 0:
                await ws.send(head)
                await ws.send(json.dumps({"type": "session.close"}))
                try:
                    async for _ in ws:
                        pass
                except websockets.ConnectionClosed:
                    pass  # a truncated head ends with ih5004 / 1007 after the drain
            elif i % 3 == 1:
                await ws.send(head)  # then vanish without a close handshake
                ws.transport.abort()
            return ready["data"]["session_id"]

    async def churn(n: int, parallel: int = 8) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, parallel):
            ids += await asyncio.gather(*[one(i) for i in range(start, min(n, start + parallel))])
        return ids

    asyncio.run(churn(40))  # warm up allocators and caches
    time.sleep(1.0)
    rss_before = frontend.memory_info().rss
    ids = asyncio.run(churn(CHURN_SESSIONS))
    deadline = time.monotonic() + 30
    while server.metric("inter1srv_sessions_open") > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.metric("inter1srv_sessions_open") == 0
    assert [n for n in os.listdir("/dev/shm") if n.startswith(f"i1s.{server.proc.pid}.")] == []
    growth = frontend.memory_info().rss - rss_before
    assert growth < 40 * 1024 * 1024, f"frontend RSS grew {growth / 1e6:.1f} MB over {CHURN_SESSIONS} sessions"
    db = sqlite3.connect(server.data_dir / "ledger.sqlite3")
    recorded = {row[0] for row in db.execute("SELECT session_id FROM sessions")}
    assert set(ids) <= recorded, "every session, clean or abrupt, has a final ledger record"
    assert len(set(ids)) == CHURN_SESSIONS
