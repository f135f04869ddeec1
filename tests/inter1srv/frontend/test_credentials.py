"""Client tokens, usage and live-session caps (the SQLite file every frontend shares)."""

import sqlite3
import subprocess
import sys
import time

import pytest

from inter1srv.frontend.client_tokens import BadField, parse_mint_body
from inter1srv.frontend.credentials import CredentialStore, Principal, Refusal
from inter1srv.keys import KeyStore


@pytest.fixture
def key(tmp_path):
    return KeyStore(tmp_path).create("k", max_concurrent=2, video_seconds_budget=10)[0]


def test_tokens_are_hashed_checked_and_revocable_across_processes(tmp_path, key):
    store = CredentialStore(tmp_path)
    record, secret = store.mint(key, expires_in=60, allowed_origins=["https://App.example.com/"])
    assert secret.startswith("i1t_") and secret.encode() not in (tmp_path / "credentials.sqlite3").read_bytes()
    assert store.lookup(secret) == record and store.lookup(secret + "x") is None
    assert record.origin_allowed("https://app.example.com") and not record.origin_allowed("https://x.example.com")
    assert not record.origin_allowed(None)
    other = CredentialStore(tmp_path)  # another frontend process sees the same tokens
    assert other.lookup(secret).token_id == record.token_id
    assert not other.is_revoked(record.token_id)
    assert not store.revoke("key_other", secret=secret)  # only the minting key revokes
    assert store.revoke(key.key_id, token_id=record.token_id)
    assert other.is_revoked(record.token_id) and other.lookup(secret) is None


def test_expired_tokens_are_refused(tmp_path, key):
    store = CredentialStore(tmp_path)
    record, secret = store.mint(key)
    with sqlite3.connect(tmp_path / "credentials.sqlite3") as db:
        db.execute("UPDATE tokens SET expires_at = ? WHERE token_id = ?", (time.time() - 1, record.token_id))
    assert store.lookup(secret) is None


def test_concurrency_caps_and_budget(tmp_path, key):
    store = CredentialStore(tmp_path)
    token, _ = store.mint(key, max_concurrent=1, max_video_seconds=4)
    as_token = Principal(key, token)
    assert store.admit("s1", as_token) == 4.0
    with pytest.raises(Refusal, match="client token"):
        store.admit("s2", as_token)
    assert store.admit("s2", Principal(key)) == 10.0
    with pytest.raises(Refusal, match="API key"):
        store.admit("s3", Principal(key))
    store.release("s1")
    store.release("s2")
    store.add_usage(key.key_id, token.token_id, 3.5)
    assert store.remaining(as_token) == pytest.approx(0.5)
    with pytest.raises(Refusal, match="budget"):
        store.admit("s4", as_token)
    assert store.remaining(Principal(key)) == pytest.approx(6.5)


def test_sessions_of_a_dead_frontend_are_swept(tmp_path, key):
    store = CredentialStore(tmp_path)
    code = ("import sys; from inter1srv.frontend.credentials import *; from inter1srv.keys import KeyStore;"
            f"k = KeyStore({str(tmp_path)!r}).list()[0]; CredentialStore({str(tmp_path)!r}).admit('a', Principal(k));"
            f"CredentialStore({str(tmp_path)!r}).admit('b', Principal(k))")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert store.admit("c", Principal(key)) == 10.0  # the exited process's two sessions no longer count


def test_key_caps_are_stored_with_the_key(tmp_path):
    keys = KeyStore(tmp_path)
    record, secret = keys.create("capped", max_concurrent=3, max_session_seconds=60, video_seconds_budget=600.0)
    again = KeyStore(tmp_path).verify(secret)
    assert again.caps == {"max_concurrent": 3, "max_session_seconds": 60, "video_seconds_budget": 600.0}
    assert keys.set_caps("capped", max_concurrent=None)
    assert KeyStore(tmp_path).get(record.key_id).max_concurrent is None
    with pytest.raises(ValueError):
        keys.create("bad", max_concurrent=0)


def test_mint_body_validation():
    assert parse_mint_body(b"")["expires_in"] == 300 and parse_mint_body(b"{}")["max_concurrent"] == 1
    caps = parse_mint_body(b'{"expires_in": 60, "max_video_seconds": 30, "allowed_origins": ["https://a.b"]}')
    assert caps["max_video_seconds"] == 30.0 and caps["allowed_origins"] == ["https://a.b"]
    for bad in (b"[]", b"{", b'{"expires_in": 59}', b'{"expires_in": 3601}', b'{"max_bytes": 0}',
                b'{"max_concurrent": 1.5}', b'{"max_bytes": true}', b'{"nope": 1}', b'{"allowed_origins": [1]}'):
        with pytest.raises(BadField):
            parse_mint_body(bad)
