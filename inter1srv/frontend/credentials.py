"""Client tokens, per-key/per-token usage and live-session counts, shared by every frontend process.

One SQLite file (``DATA_DIR/credentials.sqlite3``, WAL) holds:

- ``tokens``: short-lived client tokens minted with an API key. Only the SHA-256
  of a token is stored; the row carries its caps and who minted it.
- ``usage``: billed media seconds per key and per token (from ``session.ended``).
- ``live``: the sessions running now (with the frontend pid that runs them), so
  concurrency caps hold across frontends sharing the port (SO_REUSEPORT); rows
  of a dead frontend are swept.

Every method blocks (SQLite): call them from a thread pool, never the event loop,
except :meth:`CredentialStore.is_revoked`, which answers from memory and only
re-reads the table after a revocation touched the stamp file (one ``stat``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from inter1srv.keys import KeyRecord

TOKEN_PREFIX = "i1t_"
MIN_EXPIRES_IN, MAX_EXPIRES_IN, DEFAULT_EXPIRES_IN = 60, 3600, 300
MIN_BUDGET_SECONDS = 1.0  # less budget than this left counts as used up (nothing useful fits)

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    sha256 TEXT PRIMARY KEY,
    token_id TEXT UNIQUE NOT NULL,
    key_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    max_duration_seconds INTEGER,
    max_bytes INTEGER,
    max_concurrent INTEGER NOT NULL,
    max_video_seconds REAL,
    allowed_origins TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS usage (
    owner TEXT PRIMARY KEY,  -- 'key:<key_id>' or 'token:<token_id>'
    video_seconds REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS live (
    sid TEXT PRIMARY KEY,
    key_id TEXT,
    token_id TEXT,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    key_id: str
    created_at: float
    expires_at: float
    max_duration_seconds: int | None
    max_bytes: int | None
    max_concurrent: int
    max_video_seconds: float | None
    allowed_origins: tuple[str, ...]
    revoked: bool = False

    def origin_allowed(self, origin: str | None) -> bool:
        if not self.allowed_origins:
            return True
        return origin is not None and normalise_origin(origin) in self.allowed_origins

    def public(self) -> dict:
        """What the mint endpoint answers (never the secret's hash)."""
        return {
            "token_id": self.token_id,
            "expires_at": _iso(self.expires_at),
            "expires_at_unix": round(self.expires_at, 3),
            "max_duration_seconds": self.max_duration_seconds,
            "max_bytes": self.max_bytes,
            "max_concurrent": self.max_concurrent,
            "max_video_seconds": self.max_video_seconds,
            "allowed_origins": list(self.allowed_origins),
        }


@dataclass(frozen=True)
class Principal:
    """Who a session runs as: the key that is billed, and the client token when one was presented."""

    key: KeyRecord
    token: TokenRecord | None = None


class Refusal(Exception):
    """A cap refuses a new session (reported as ``ih1003`` + close 1013)."""


def normalise_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _retry_locked(step, seconds: float = 10.0):
    """Run ``step``, retrying while SQLite says the database is locked. Frontends started together
    (``serve --frontends N``) open the new file at once; switching it to WAL takes an exclusive
    lock, and SQLite answers a second connection "database is locked" at once there, without its
    busy timeout (measured: one of two frontends started together died of it now and then)."""
    deadline = time.monotonic() + seconds
    delay = 0.01
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not (busy or "locked" in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(0.2, delay * 2)


class CredentialStore:
    def __init__(self, data_dir: str | os.PathLike):
        self.path = Path(data_dir) / "credentials.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stamp = Path(data_dir) / "credentials.revoked"
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        _retry_locked(lambda: self.db.execute("PRAGMA journal_mode=WAL"))
        _retry_locked(lambda: self.db.executescript(SCHEMA))
        os.chmod(self.path, 0o600)
        self._revoked: set[str] = set()
        self._stamp_seen: int | None = -1

    # -- tokens ------------------------------------------------------------------------
    def mint(
        self,
        key: KeyRecord,
        *,
        expires_in: int = DEFAULT_EXPIRES_IN,
        max_duration_seconds: int | None = None,
        max_bytes: int | None = None,
        max_concurrent: int = 1,
        max_video_seconds: float | None = None,
        allowed_origins: list[str] | tuple[str, ...] = (),
    ) -> tuple[TokenRecord, str]:
        """A new token for ``key``; the secret is returned once, only its hash is stored."""
        now = time.time()
        record = TokenRecord(
            token_id="tok_" + secrets.token_hex(8), key_id=key.key_id, created_at=now, expires_at=now + expires_in,
            max_duration_seconds=max_duration_seconds, max_bytes=max_bytes, max_concurrent=max_concurrent,
            max_video_seconds=max_video_seconds,
            allowed_origins=tuple(normalise_origin(o) for o in allowed_origins),
        )
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            self.db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (_hash(secret), record.token_id, record.key_id, record.created_at, record.expires_at,
                 max_duration_seconds, max_bytes, max_concurrent, max_video_seconds,
                 orjson.dumps(list(record.allowed_origins)).decode()),
            )
            self.db.execute("DELETE FROM tokens WHERE expires_at < ?", (now - 86400,))  # keep the table small
        return record, secret

    def lookup(self, secret: str) -> TokenRecord | None:
        """The live (unexpired, unrevoked) token for ``secret``, else None."""
        digest = _hash(secret)
        with self._lock:
            row = self.db.execute("SELECT * FROM tokens WHERE sha256 = ?", (digest,)).fetchone()
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        record = _token(row)
        if record.revoked or record.expires_at <= time.time():
            return None
        return record

    def revoke(self, key_id: str, *, secret: str | None = None, token_id: str | None = None) -> bool:
        """Revoke a token minted by ``key_id`` (named by its secret or its id)."""
        with self._lock:
            if secret is not None:
                cur = self.db.execute("UPDATE tokens SET revoked = 1 WHERE sha256 = ? AND key_id = ?",
                                      (_hash(secret), key_id))
            else:
                cur = self.db.execute("UPDATE tokens SET revoked = 1 WHERE token_id = ? AND key_id = ?",
                                      (token_id, key_id))
        if cur.rowcount:
            self.stamp.write_text(str(time.time_ns()))
        return cur.rowcount > 0

    def is_revoked(self, token_id: str) -> bool:
        """Cheap enough for every chunk: one stat, a table read only after a revocation."""
        try:
            stamp = self.stamp.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp_seen:
            with self._lock:
                rows = self.db.execute("SELECT token_id FROM tokens WHERE revoked = 1").fetchall()
            self._revoked = {r[0] for r in rows}
            self._stamp_seen = stamp
        return token_id in self._revoked

    # -- usage -------------------------------------------------------------------------
    def usage(self, owner: str) -> float:
        with self._lock:
            row = self.db.execute("SELECT video_seconds FROM usage WHERE owner = ?", (owner,)).fetchone()
        return float(row[0]) if row else 0.0

    def add_usage(self, key_id: str | None, token_id: str | None, seconds: float) -> None:
        owners = [o for o in (key_id and f"key:{key_id}", token_id and f"token:{token_id}") if o]
        if not owners or seconds <= 0:
            return
        with self._lock:
            with self.db:
                for owner in owners:
                    self.db.execute(
                        "INSERT INTO usage VALUES (?, ?) ON CONFLICT(owner) "
                        "DO UPDATE SET video_seconds = video_seconds + excluded.video_seconds",
                        (owner, float(seconds)),
                    )

    def remaining(self, principal: Principal) -> float | None:
        """Media seconds left in the key's and token's budgets (None: no budget)."""
        left: list[float] = []
        if principal.key.video_seconds_budget is not None:
            left.append(principal.key.video_seconds_budget - self.usage(f"key:{principal.key.key_id}"))
        token = principal.token
        if token is not None and token.max_video_seconds is not None:
            left.append(token.max_video_seconds - self.usage(f"token:{token.token_id}"))
        return max(0.0, min(left)) if left else None

    # -- live sessions -----------------------------------------------------------------
    def admit(self, sid: str, principal: Principal) -> float | None:
        """Register a starting session under the caps; returns the remaining budget. Raises Refusal."""
        left = self.remaining(principal)
        if left is not None and left < MIN_BUDGET_SECONDS:
            raise Refusal("The video-seconds budget of this credential is used up.")
        key, token = principal.key, principal.token
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                pids = [r[0] for r in self.db.execute("SELECT DISTINCT pid FROM live").fetchall()]
                for pid in pids:
                    if not _pid_alive(pid):
                        self.db.execute("DELETE FROM live WHERE pid = ?", (pid,))
                if key.max_concurrent is not None:
                    (n,) = self.db.execute("SELECT COUNT(*) FROM live WHERE key_id = ?", (key.key_id,)).fetchone()
                    if n >= key.max_concurrent:
                        raise Refusal(f"This API key already has {n} live sessions (its cap is {key.max_concurrent}).")
                if token is not None:
                    (n,) = self.db.execute("SELECT COUNT(*) FROM live WHERE token_id = ?",
                                           (token.token_id,)).fetchone()
                    if n >= token.max_concurrent:
                        raise Refusal(f"This client token already has {n} live sessions "
                                      f"(its cap is {token.max_concurrent}).")
                self.db.execute("INSERT OR REPLACE INTO live VALUES (?, ?, ?, ?, ?)",
                                (sid, key.key_id, token.token_id if token else None, os.getpid(), time.time()))
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        return left

    def release(self, sid: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM live WHERE sid = ?", (sid,))

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _token(row: tuple) -> TokenRecord:
    return TokenRecord(
        token_id=row[1], key_id=row[2], created_at=row[3], expires_at=row[4], max_duration_seconds=row[5],
        max_bytes=row[6], max_concurrent=row[7], max_video_seconds=row[8],
        allowed_origins=tuple(orjson.loads(row[9])), revoked=bool(row[10]),
    )
