"""Frontends started together open the credential store at once: none may die of a locked database."""

from __future__ import annotations

import multiprocessing as mp


def _open(path: str, barrier, results) -> None:
    from inter1srv.frontend.credentials import CredentialStore

    barrier.wait()
    try:
        CredentialStore(path)
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(repr(exc))


def test_frontends_opening_a_new_store_together_all_succeed(tmp_path):
    ctx = mp.get_context("spawn")
    for round_ in range(5):
        path = str(tmp_path / f"data{round_}")
        barrier, results = ctx.Barrier(12), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(path, barrier, results)) for _ in range(12)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        got = [results.get(timeout=5) for _ in procs]
        assert got == ["ok"] * 12, got
