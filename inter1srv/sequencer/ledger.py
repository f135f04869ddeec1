"""The billing ledger: SQLite in WAL mode, one row per delivered window and one per session.

Writes are idempotent (keyed by session and window), so a retried write never
bills twice. The session row is committed with ``synchronous=FULL`` before the
sequencer lets ``session.ended`` go out.
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


class Ledger:
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
