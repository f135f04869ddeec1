"""Client tokens and per-key caps against a real server (and the files several frontends share)."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import httpx
import pytest
import websockets
from harness import chunks_of, stream_session
from websockets.exceptions import InvalidStatus

from inter1srv.keys import KeyStore
from inter1srv.synthmedia import default_script, encode_webm


@pytest.fixture(scope="module")
def short_clip() -> bytes:
    return encode_webm(default_script(12.0), width=320, height=240, fps=15)


def mint(server, key=None, **caps) -> httpx.Response:
    return httpx.post(f"http://{server.base}/v1/client_tokens", json=caps,
                      headers={"Authorization": f"Bearer {key or server.key}"}, timeout=10)


def revoke(server, key=None, **body) -> httpx.Response:
    return httpx.post(f"http://{server.base}/v1/client_tokens/revoke", json=body,
                      headers={"Authorization": f"Bearer {key or server.key}"}, timeout=10)


async def upgrade_status(url: str, token: str, origin: str | None = None) -> int:
    try:
        async with websockets.connect(url, subprotocols=["access_token", token], origin=origin) as ws:
            json.loads(await ws.recv())
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def _errors(record):
    return [e["data"]["code"] for e in record.of("error")]


def test_token_streams_through_subprotocol_and_bearer_and_bills_the_key(server, short_clip):
    answer = mint(server, expires_in=120, max_concurrent=2)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token"].startswith("i1t_") and body["expires_at"].endswith("Z") and body["max_concurrent"] == 2
    token = body["token"]
    for subprotocol in (True, False):
        record = asyncio.run(stream_session(server.url, token, chunks_of(short_clip, 65536), subprotocol=subprotocol))
        assert record.close_code == 1000 and record.ended["data"]["reason"] == "client_shutdown"
    sid = record.events[0]["data"]["session_id"]
    key_id = KeyStore(server.data_dir).list()[0].key_id
    db = sqlite3.connect(server.data_dir / "ledger.sqlite3")
    assert db.execute("SELECT key_id FROM sessions WHERE session_id = ?", (sid,)).fetchone() == (key_id,)
    assert token not in (server.data_dir / "credentials.sqlite3").read_bytes().decode("latin-1")
    assert token not in server.log_tail(400) and server.key not in server.log_tail(400)


def test_mint_and_revoke_are_validated(server):
    assert mint(server, key="i1s_nope").status_code == 401
    token = mint(server).json()["token"]
    assert mint(server, key=token).status_code == 401  # a token cannot mint tokens
    for bad in ({"expires_in": 10}, {"expires_in": 7200}, {"max_concurrent": 0}, {"colour": "red"},
                {"allowed_origins": "https://a.example"}, {"max_bytes": -1}):
        response = mint(server, **bad)
        assert response.status_code == 400 and response.json()["error_id"] == "ih4001", bad
    _, other = KeyStore(server.data_dir).create("other")
    assert revoke(server, key=other, token=token).status_code == 404  # only the minting key revokes
    assert revoke(server, token=token).status_code == 200
    assert asyncio.run(upgrade_status(server.url, token)) == 401


def test_expired_and_wrong_origin_tokens_get_401(server):
    locked = mint(server, allowed_origins=["https://app.example.com"]).json()
    assert asyncio.run(upgrade_status(server.url, locked["token"], origin="https://evil.example.com")) == 401
    assert asyncio.run(upgrade_status(server.url, locked["token"])) == 401
    assert asyncio.run(upgrade_status(server.url, locked["token"], origin="https://app.example.com")) == 101
    expiring = mint(server).json()
    db = sqlite3.connect(server.data_dir / "credentials.sqlite3")
    with db:
        db.execute("UPDATE tokens SET expires_at = 0 WHERE token_id = ?", (expiring["token_id"],))
    assert asyncio.run(upgrade_status(server.url, expiring["token"])) == 401


def test_revoked_token_ends_live_session_at_next_chunk(server, short_clip):
    token = mint(server).json()["token"]
    chunks = chunks_of(short_clip, 16384)

    async def run():
        async with websockets.connect(server.url, subprotocols=["access_token", token]) as ws:
            assert json.loads(await ws.recv())["type"] == "session.ready"
            for chunk in chunks[:4]:
                await ws.send(chunk)
            assert (await asyncio.to_thread(revoke, server, token=token)).status_code == 200
            events = []
            try:
                await ws.send(chunks[4])
                async for message in ws:
                    events.append(json.loads(message))
            except websockets.ConnectionClosed:
                pass
            return events, ws.close_code

    events, code = asyncio.run(run())
    assert code == 1008
    assert [e["data"]["code"] for e in events if e["type"] == "error"] == ["ih1002"]


def test_token_concurrency_and_byte_caps(server, short_clip):
    token = mint(server).json()["token"]  # max_concurrent defaults to 1

    async def two():
        async with websockets.connect(server.url, subprotocols=["access_token", token]) as ws:
            assert json.loads(await ws.recv())["type"] == "session.ready"
            second = await stream_session(server.url, token, [], subprotocol=True)
            await ws.send('{"type": "session.close"}')
            return second

    second = asyncio.run(two())
    assert second.close_code == 1013 and _errors(second) == ["ih1003"]
    capped = mint(server, max_bytes=60_000).json()["token"]
    record = asyncio.run(stream_session(server.url, capped, chunks_of(short_clip, 16384), subprotocol=True))
    assert record.ended["data"]["reason"] == "max_duration" and "ih6004" in _errors(record)


def test_key_caps_concurrency_session_seconds_and_budget(server, short_clip):
    store = KeyStore(server.data_dir)
    _, concurrent_key = store.create("one-at-a-time", max_concurrent=1)

    async def two():
        async with websockets.connect(server.url, additional_headers={"Authorization": f"Bearer {concurrent_key}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.ready"
            second = await stream_session(server.url, concurrent_key, [])
            await ws.send('{"type": "session.close"}')
            return second

    second = asyncio.run(two())
    assert second.close_code == 1013 and _errors(second) == ["ih1003"]

    _, short_key = store.create("short", max_session_seconds=2)
    record = asyncio.run(stream_session(server.url, short_key, chunks_of(short_clip, len(short_clip) // 40 + 1),
                                          pace_seconds=0.1))  # 4 s of wall time
    assert record.events[0]["data"]["session_max_duration_seconds"] == 2
    assert record.ended["data"]["reason"] == "max_duration" and "ih6004" in _errors(record)

    _, budget_key = store.create("budget", video_seconds_budget=6)
    record = asyncio.run(stream_session(server.url, budget_key, chunks_of(short_clip, 16384)))
    assert record.ended["data"]["reason"] == "max_duration" and "ih6004" in _errors(record)
    assert 5.5 <= record.ended["data"]["billed_seconds"] <= 6.0  # never decoded past the budget
    again = asyncio.run(stream_session(server.url, budget_key, chunks_of(short_clip, 16384)))
    assert again.close_code == 1013 and _errors(again) == ["ih1003"] and again.ended is None
