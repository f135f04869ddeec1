"""The billing ledger: one row per delivered window and one per session.

SQLite in WAL mode by default (one host); PostgreSQL for a fleet (``ledger_url``
= ``postgresql://...``), same schema. Writes are idempotent (keyed by session and
window), so a retried write never bills twice. The session row is committed
durably (SQLite ``synchronous=FULL``; PostgreSQL commit) before the sequencer
lets ``session.ended`` go out.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson

from .ranges import Range, total, union

SCHEMA = """
CREATE TABLE IF NOT EXISTS billed_windows (
    session_id TEXT NOT NULL,
    window_index INTEGER NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    key_id TEXT,
    delivered_at REAL NOT NULL,
    PRIMARY KEY (session_id, window_index)
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    key_id TEXT,
    correlation_id TEXT,
    started_at REAL,
    ended_at REAL,
    reason TEXT,
    media_seconds REAL,
    billed_seconds REAL NOT NULL,
    analyzed_ranges TEXT NOT NULL,
    dropped_ranges TEXT NOT NULL
);
"""


class SqliteLedger:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def record_windows(self, rows: list[tuple[str, int, float, float, str | None]]) -> None:
        """Delivered windows: (session_id, window_index, start, end, key_id)."""
        if not rows:
            return
        now = time.time()
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO billed_windows VALUES (?, ?, ?, ?, ?, ?)",
                [(*r, now) for r in rows],
            )

    def record_session(
        self,
        *,
        session_id: str,
        key_id: str | None,
        correlation_id: str,
        started_at: float,
        reason: str,
        media_seconds: float,
        analyzed: list[Range],
        dropped: list[Range],
    ) -> float:
        """Commit the session's final record; returns the billed seconds."""
        analyzed = union(analyzed)
        billed = round(total(analyzed), 3)
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    key_id,
                    correlation_id,
                    started_at,
                    time.time(),
                    reason,
                    media_seconds,
                    billed,
                    orjson.dumps(analyzed).decode(),
                    orjson.dumps(union(dropped)).decode(),
                ),
            )
        return billed

    def billed_from_windows(self, session_id: str) -> float:
        rows = self.db.execute(
            "SELECT start_s, end_s FROM billed_windows WHERE session_id = ?", (session_id,)
        ).fetchall()
        return round(total([(s, e) for s, e in rows]), 3)

    def close(self) -> None:
        self.db.close()


PG_SCHEMA = SCHEMA.replace("REAL", "DOUBLE PRECISION")


class PostgresLedger:
    """The same ledger on PostgreSQL (psycopg 3), for several hosts billing into one database."""

    def __init__(self, url: str):
        import psycopg

        self.db = psycopg.connect(url, autocommit=True)
        with self.db.transaction():
            for statement in filter(str.strip, PG_SCHEMA.split(";")):
                self.db.execute(statement)

    def record_windows(self, rows: list[tuple[str, int, float, float, str | None]]) -> None:
        if not rows:
            return
        now = time.time()
        with self.db.transaction(), self.db.cursor() as cur:
            cur.executemany(
                "INSERT INTO billed_windows VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(*r, now) for r in rows],
            )

    def record_session(self, *, session_id, key_id, correlation_id, started_at, reason, media_seconds,
                       analyzed, dropped) -> float:
        analyzed = union(analyzed)
        billed = round(total(analyzed), 3)
        with self.db.transaction():
            self.db.execute(
                """INSERT INTO sessions VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (session_id) DO UPDATE SET ended_at = EXCLUDED.ended_at, reason = EXCLUDED.reason,
                   media_seconds = EXCLUDED.media_seconds, billed_seconds = EXCLUDED.billed_seconds,
                   analyzed_ranges = EXCLUDED.analyzed_ranges, dropped_ranges = EXCLUDED.dropped_ranges""",
                (session_id, key_id, correlation_id, started_at, time.time(), reason, media_seconds, billed,
                 orjson.dumps(analyzed).decode(), orjson.dumps(union(dropped)).decode()),
            )
        return billed

    def billed_from_windows(self, session_id: str) -> float:
        rows = self.db.execute(
            "SELECT start_s, end_s FROM billed_windows WHERE session_id = %s", (session_id,)
        ).fetchall()
        return round(total([(s, e) for s, e in rows]), 3)

    def close(self) -> None:
        self.db.close()


Ledger = SqliteLedger | PostgresLedger


def open_ledger(url: str, data_dir: Path) -> Ledger:
    """``url`` empty or ``sqlite:///path``: SQLite (default: DATA_DIR/ledger.sqlite3); ``postgresql://``: PostgreSQL."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresLedger(url)
    if url.startswith("sqlite:///"):
        return SqliteLedger(url[len("sqlite:///") - 1:])
    if url:
        raise ValueError(f"unsupported ledger_url {url!r}: use sqlite:///PATH or postgresql://...")
    return SqliteLedger(data_dir / "ledger.sqlite3")
