"""Two hosts behind a real HAProxy, billing into one PostgreSQL; one host dies, sessions go on."""

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from harness import ServerProcess, chunks_of, free_port, stream_session

from inter1srv.synthmedia import default_script, encode_webm

EXAMPLE = Path(__file__).resolve().parents[2] / "systemd" / "haproxy.cfg.example"


def _haproxy_config(port: int, backends: list[int]) -> str:
    text = EXAMPLE.read_text().replace("bind :8080", f"bind 127.0.0.1:{port}")
    lines = [line for line in text.splitlines() if not line.strip().startswith("server host")]
    lines += [f"    server host{i} 127.0.0.1:{p} check" for i, p in enumerate(backends, 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (.ci/services.sh installs it)")
@pytest.mark.timeout(300)
def test_sessions_spread_and_survive_a_dead_host(tmp_path, pg_url):
    clip = encode_webm(default_script(9.0), width=320, height=240, fps=15)
    hosts = [ServerProcess(tmp_path / f"host{i}", ledger_url=pg_url).start() for i in (1, 2)]
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(_haproxy_config(port, [h.port for h in hosts]))
    assert subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True).returncode == 0
    proxy = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"ws://127.0.0.1:{port}/v1/stream/analyze"
    key = hosts[0].key
    # the same key must work on both hosts: copy host1's key file to host2
    shutil.copy(hosts[0].data_dir / "keys.json", hosts[1].data_dir / "keys.json")
    try:
        time.sleep(2.0)

        async def many(n):
            return await asyncio.gather(*[stream_session(url, key, chunks_of(clip, 30_000), pace_seconds=0.05)
                                          for _ in range(n)])

        first = asyncio.run(many(4))
        assert all(r.close_code == 1000 for r in first), [r.events[-1:] for r in first]
        served = [len(list((h.data_dir / "timelines").glob("*.jsonl"))) for h in hosts]
        assert all(n > 0 for n in served), f"leastconn must spread concurrent sessions: {served}"

        hosts[0].kill_all()
        time.sleep(3.0)  # two failed health checks at 1 s
        second = asyncio.run(many(3))
        assert all(r.close_code == 1000 for r in second)
        second_ids = {r.events[0]["data"]["session_id"] for r in second}
        on_host2 = {p.stem for p in (hosts[1].data_dir / "timelines").glob("*.jsonl")}
        assert second_ids <= on_host2, "after the kill every new session lands on the live host"

        with psycopg.connect(pg_url) as db:
            for record in first + second:
                sid = record.events[0]["data"]["session_id"]
                row = db.execute("SELECT billed_seconds FROM sessions WHERE session_id = %s", (sid,)).fetchone()
                assert row is not None and row[0] == record.ended["data"]["billed_seconds"]
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        for h in hosts:
            h.stop()
