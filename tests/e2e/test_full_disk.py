"""A full data-dir disk: the session that cannot be billed durably gets ih1001; the server lives on."""

import asyncio
import os
import subprocess

import pytest
from harness import ServerProcess, chunks_of, stream_session


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path) -> None:
    with open(path, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1 << 16))
        except OSError:
            pass


def test_full_disk_fails_the_session_not_the_server(tiny_disk, clip):
    srv = ServerProcess(tiny_disk / "data").start()
    try:
        filler = tiny_disk / "filler"
        _fill(filler)
        record = asyncio.run(stream_session(srv.url, srv.key, chunks_of(clip, 100_000)))
        codes = [e["data"]["code"] for e in record.of("error")]
        assert "ih1001" in codes and record.close_code == 1011, (codes, record.close_code, srv.log_tail(20))
        assert record.ended is None, "no session.ended when billing could not be made durable"
        assert srv.ready(), "the server keeps serving"
        os.unlink(filler)
        again = asyncio.run(stream_session(srv.url, srv.key, chunks_of(clip, 100_000)))
        assert again.close_code == 1000 and abs(again.ended["data"]["billed_seconds"] - 30.0) < 0.2

        async def fill_mid_session():
            async def filler_task():
                await asyncio.sleep(1.0)
                await asyncio.get_running_loop().run_in_executor(None, _fill, filler)
            f = asyncio.create_task(filler_task())
            record = await stream_session(srv.url, srv.key, chunks_of(clip, -(-len(clip) // 60)), pace_seconds=0.05)
            await f
            return record

        midway = asyncio.run(fill_mid_session())
        codes = [e["data"]["code"] for e in midway.of("error")]
        assert "ih1001" in codes and midway.close_code == 1011, (codes, midway.close_code)
        assert midway.ended is None, "billing that cannot be made durable is never announced"
        assert srv.ready()
    finally:
        srv.stop()
