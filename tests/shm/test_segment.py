"""shm.segment: naming, create/attach/close/unlink, and sweeping dead owners."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from shm import (
    Segment,
    list_segments,
    make_server_prefix,
    parse_segment_name,
    pid_alive,
    segment_name,
    sweep_creator,
    sweep_stale,
)
from shm.segment import MAX_NAME, SHM_DIR


def _exists(name: str) -> bool:
    return os.path.exists(os.path.join(SHM_DIR, name))


# ------------------------------------------------------------------ naming
def test_prefix_and_names_carry_pids() -> None:
    assert make_server_prefix() == f"i1s.{os.getpid()}."
    assert make_server_prefix(42) == "i1s.42."
    assert make_server_prefix(42, root="x-1.") == "x-1.42."
    name = segment_name("i1s.42.", "sess-1_A")
    assert name == f"i1s.42.{os.getpid()}.sess-1_A"
    assert segment_name("i1s.42.", "s", creator_pid=7) == "i1s.42.7.s"
    assert parse_segment_name("i1s.42.7.s.x") == (42, 7, "s.x")
    assert parse_segment_name("i1s.42.s") is None
    assert parse_segment_name("other.42.7.s") is None


def test_ident_sanitised_bounded_and_distinct() -> None:
    a = segment_name("i1s.1.", "a/b c", creator_pid=2)
    b = segment_name("i1s.1.", "a_b_c", creator_pid=2)
    c = segment_name("i1s.1.", "a.b.c", creator_pid=2)
    assert b == "i1s.1.2.a_b_c"
    assert len({a, b, c}) == 3
    for n in (a, c):
        assert n.startswith("i1s.1.2.a_b_c-")
        assert all(ch.isalnum() or ch in "_-" for ch in n.split(".", 3)[3])
    long = segment_name("i1s.1.", "x" * 1000, creator_pid=2)
    assert len(long) <= MAX_NAME and long.startswith("i1s.1.2.xxx")
    assert segment_name("i1s.1.", "", creator_pid=2).startswith("i1s.1.2.-")


@pytest.mark.parametrize("bad", ["", "a", "a.b", "a/b."])
def test_bad_roots_and_prefixes_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        make_server_prefix(1, root=bad)
    if bad != "a.b":
        with pytest.raises(ValueError):
            segment_name(bad, "x")


# ------------------------------------------------------------ segment life
def test_create_attach_share_memory(root: str) -> None:
    name = segment_name(make_server_prefix(root=root), "data")
    with Segment.create(name, 10_000) as seg, Segment.attach(name) as other:
        assert seg.name == name and other.name == name
        assert seg.size == other.size == 10_000 and seg.owner and not other.owner
        assert stat.S_IMODE(os.stat(os.path.join(SHM_DIR, name)).st_mode) == 0o600
        seg.buf[:5] = b"hello"
        assert bytes(other.buf[:5]) == b"hello"
        other.buf[9999] = 7
        assert seg.buf[9999] == 7
        with Segment.attach(name, readonly=True) as ro:
            assert ro.buf.readonly and bytes(ro.buf[:5]) == b"hello"
            with pytest.raises(TypeError):
                ro.buf[0] = 1
        with pytest.raises(FileExistsError):
            Segment.create(name, 100)
    assert seg.closed and other.closed
    assert _exists(name)  # closing never unlinks
    seg.unlink()
    assert not _exists(name)


def test_bad_sizes_and_missing(root: str) -> None:
    name = segment_name(make_server_prefix(root=root), "x")
    with pytest.raises(ValueError):
        Segment.create(name, 0)
    assert not _exists(name)
    with pytest.raises(FileNotFoundError):
        Segment.attach(name)
    with pytest.raises(ValueError):
        Segment.attach("../etc/passwd")


def test_only_creator_unlinks_and_unlink_idempotent(root: str) -> None:
    name = segment_name(make_server_prefix(root=root), "own")
    seg = Segment.create(name, 4096)
    att = Segment.attach(name)
    with pytest.raises(PermissionError):
        att.unlink()
    assert _exists(name)
    att.close()
    seg.close()
    seg.unlink()  # allowed after close
    seg.unlink()
    assert not _exists(name)


def _mapped(name: str) -> bool:
    with open("/proc/self/maps") as fh:
        return any(line.rstrip().endswith(f"/dev/shm/{name}") for line in fh)


def test_close_idempotent_with_live_numpy_views(root: str) -> None:
    name = segment_name(make_server_prefix(root=root), "views")
    seg = Segment.create(name, 4096)
    view = np.ndarray((512,), np.int64, seg.buf)
    view[:] = np.arange(512)
    assert _mapped(name)
    seg.close()  # must not raise (nor unmap) although `view` still uses the mapping
    seg.close()
    assert seg.closed
    with pytest.raises(ValueError):
        _ = seg.buf
    assert view[511] == 511 and _mapped(name)
    del view  # the last view gone: unmapped
    assert not _mapped(name)
    seg.unlink()

    seg2 = Segment.create(name, 4096)
    v2 = np.ndarray((4096,), np.uint8, seg2.buf)
    del v2  # views released first: close unmaps right away
    seg2.close()
    assert not _mapped(name)
    seg2.unlink()


# ---------------------------------------------------------------- sweeping
def _spawn(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True, env=env)


CHILD = """
    import sys, time
    from shm import MediaRing, Segment, make_server_prefix, segment_name
    root, server = sys.argv[1], sys.argv[2]
    prefix = make_server_prefix(None if server == "self" else int(server), root=root)
    names = [segment_name(prefix, "a"), segment_name(prefix, "b")]
    segs = [Segment.create(n, 8192) for n in names]
    ring = MediaRing.create(segment_name(prefix, "ring"), video_slots=2, max_width=8, max_height=8, audio_seconds=0.1)
    print(" ".join(names + [ring.name]), flush=True)
    time.sleep(120)
"""


def _start_child(root: str, server: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), root, server],
                         stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None
    names = p.stdout.readline().split()
    assert len(names) == 3, "child failed to create its segments"
    return p, names


def _kill(p: subprocess.Popen[str], reap: bool = True) -> None:
    os.kill(p.pid, signal.SIGKILL)
    if reap:
        p.wait(timeout=10)


def test_sigkilled_server_segments_are_swept(root: str, child_env: dict[str, str]) -> None:
    live = Segment.create(segment_name(make_server_prefix(root=root), "live"), 4096)
    p, names = _start_child(root, "self", child_env)
    try:
        assert all(_exists(n) for n in names)
        assert all(n.startswith(f"{root}{p.pid}.{p.pid}.") for n in names)
        assert sweep_stale(root) == []  # everyone alive: nothing removed
        _kill(p, reap=False)
        p.wait(timeout=10)
        assert all(_exists(n) for n in names)  # SIGKILL leaves them behind
        removed = sweep_stale(root)
        assert sorted(removed) == sorted(names)
        assert not any(_exists(n) for n in names)
        assert _exists(live.name)  # a live process's segment is never swept
        assert list_segments(root) == [live.name]
    finally:
        if p.poll() is None:
            _kill(p)
        live.close()
        live.unlink()


def test_zombie_counts_as_dead(child_env: dict[str, str]) -> None:
    p = _spawn("import time; print('up', flush=True); time.sleep(120)", child_env)
    assert p.stdout is not None and p.stdout.readline().strip() == "up"
    assert pid_alive(p.pid)
    os.kill(p.pid, signal.SIGKILL)
    try:
        deadline = time.monotonic() + 10
        while pid_alive(p.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not pid_alive(p.pid)
        assert os.path.exists(f"/proc/{p.pid}")  # not reaped yet: still a zombie
    finally:
        p.wait(timeout=10)
    assert pid_alive(os.getpid()) and pid_alive(1) and not pid_alive(0) and not pid_alive(-1)


def test_dead_creator_under_live_server_is_swept(root: str, child_env: dict[str, str]) -> None:
    p, names = _start_child(root, str(os.getpid()), child_env)
    try:
        assert all(n.startswith(f"{root}{os.getpid()}.{p.pid}.") for n in names)
        assert sweep_stale(root) == []
        _kill(p)
        assert sorted(sweep_stale(root)) == sorted(names)
    finally:
        if p.poll() is None:
            _kill(p)


def test_sweep_creator_removes_only_that_childs_segments(root: str, child_env: dict[str, str]) -> None:
    prefix = make_server_prefix(root=root)
    mine = Segment.create(segment_name(prefix, "mine"), 4096)
    p, names = _start_child(root, str(os.getpid()), child_env)
    try:
        _kill(p)
        assert sorted(sweep_creator(prefix, p.pid)) == sorted(names)
        assert sweep_creator(prefix, p.pid) == []
        assert list_segments(root) == [mine.name]
    finally:
        if p.poll() is None:
            _kill(p)
        mine.close()
        mine.unlink()


def test_shm_imports_no_torch_or_asyncio(child_env: dict[str, str]) -> None:
    code = "import sys, shm, shm.segment, shm.media_ring; print(sorted({'torch', 'asyncio'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env, check=True)
    assert out.stdout.strip() == "[]"
