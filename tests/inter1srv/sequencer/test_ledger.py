import sqlite3

from inter1srv.sequencer.ledger import SqliteLedger as Ledger


def test_windows_are_idempotent_and_session_row_is_durable(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    rows = [("s1", 0, 0.0, 8.0, "k"), ("s1", 1, 3.0, 11.0, "k")]
    ledger.record_windows(rows)
    ledger.record_windows(rows)  # a retried write bills nothing twice
    assert ledger.billed_from_windows("s1") == 11.0
    billed = ledger.record_session(
        session_id="s1", key_id="k", correlation_id="c", started_at=0.0, reason="client_shutdown",
        media_seconds=12.0, analyzed=[(0, 8), (3, 11)], dropped=[(11, 12)],
    )
    assert billed == 11.0
    ledger.close()
    db = sqlite3.connect(path)  # a fresh connection sees the committed rows
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT billed_seconds, reason FROM sessions").fetchall() == [(11.0, "client_shutdown")]
    assert db.execute("SELECT COUNT(*) FROM billed_windows").fetchone()[0] == 2


def test_postgres_ledger_same_schema_idempotent(pg_url):
    import uuid

    from inter1srv.sequencer.ledger import open_ledger

    ledger = open_ledger(pg_url, None)
    sid = "s-" + uuid.uuid4().hex
    rows = [(sid, 0, 0.0, 8.0, "k"), (sid, 1, 3.0, 11.0, "k")]
    ledger.record_windows(rows)
    ledger.record_windows(rows)
    assert ledger.billed_from_windows(sid) == 11.0
    billed = ledger.record_session(session_id=sid, key_id="k", correlation_id="c", started_at=0.0,
                                   reason="client_shutdown", media_seconds=12.0, analyzed=[(0, 11)], dropped=[(11, 12)])
    ledger.record_session(session_id=sid, key_id="k", correlation_id="c", started_at=0.0,
                          reason="client_shutdown", media_seconds=12.0, analyzed=[(0, 11)], dropped=[(11, 12)])
    ledger.close()
    again = open_ledger(pg_url, None)
    assert billed == 11.0
    assert again.db.execute("SELECT billed_seconds FROM sessions WHERE session_id = %s", (sid,)).fetchall() == [(11.0,)]
    again.close()
