"""Credential shapes against a real server, and secrets kept out of logs and files."""

import asyncio
import subprocess
import sys
import urllib.request

import pytest
import websockets
from harness import chunks_of, stream_session
from websockets.exceptions import InvalidStatus


def _status(url: str, **kwargs) -> int:
    async def go():
        async with websockets.connect(url, **kwargs) as ws:
            await ws.recv()
            return 101
    try:
        return asyncio.run(go())
    except InvalidStatus as exc:
        return exc.response.status_code


def test_credential_shapes(server):
    key = server.key
    assert _status(server.url) == 401  # missing
    assert _status(server.url, additional_headers={"Authorization": "Bearer"}) == 401  # malformed
    assert _status(server.url, additional_headers={"Authorization": key}) == 401  # no scheme
    assert _status(server.url, additional_headers={"Authorization": f"Bearer {key[:-1]}x"}) == 401  # wrong
    assert _status(server.url, subprotocols=["access_token"]) == 401  # subprotocol without a credential
    assert _status(f"{server.url}?access_token={key}") == 401, "keys in the query string are refused by design"
    assert _status(f"{server.url}?key={key}&ih_sdk=python") == 401
    assert _status(f"{server.url}?ih_sdk=python&ih_sdk_version=1.3.4",
                   additional_headers={"Authorization": f"Bearer {key}"}) == 101, "unknown query parameters are ignored"
    assert _status(server.url.replace("/v1/stream/analyze", "/v1/stream"),
                   additional_headers={"Authorization": f"Bearer {key}"}) == 101


def test_revoked_key_is_refused_at_once(server):
    out = subprocess.run([sys.executable, "-m", "inter1srv", "keys", "create", "short-lived", "--data-dir",
                          str(server.data_dir)], check=True, capture_output=True, text=True)
    secret = out.stdout.strip()
    assert _status(server.url, additional_headers={"Authorization": f"Bearer {secret}"}) == 101
    subprocess.run([sys.executable, "-m", "inter1srv", "keys", "revoke", "short-lived", "--data-dir",
                    str(server.data_dir)], check=True, capture_output=True)
    assert _status(server.url, additional_headers={"Authorization": f"Bearer {secret}"}) == 401


def test_keys_never_reach_logs_or_files(server, clip):
    record = asyncio.run(stream_session(server.url, server.key, chunks_of(clip[:300_000], 100_000)))
    assert record.events[0]["type"] == "session.ready"
    assert server.key not in server.log_tail(100_000)
    for path in server.data_dir.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert server.key.encode() not in path.read_bytes(), f"key found in {path}"
    listing = subprocess.run([sys.executable, "-m", "inter1srv", "keys", "list", "--data-dir", str(server.data_dir)],
                             check=True, capture_output=True, text=True).stdout
    assert server.key not in listing


def test_probe_endpoints_need_no_credential(server):
    with urllib.request.urlopen(f"http://{server.base}/healthz") as r:
        assert r.status == 200
    with urllib.request.urlopen(f"http://{server.base}/metrics") as r:
        text = r.read().decode()
    assert "inter1srv_sessions_open" in text and "inter1srv_window_processing_ratio_bucket" in text
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://{server.base}/nope")
    assert info.value.code == 404
