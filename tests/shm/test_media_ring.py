"""shm.media_ring: single-process semantics plus a multi-process torn-read stress test."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shm import Lapped, MediaRing, RingFormatError, Segment, make_server_prefix, segment_name
from shm import media_ring as mr

STRESS = Path(__file__).with_name("_stress_proc.py")


def frame(seq: int, h: int = 6, w: int = 10) -> np.ndarray:
    return ((np.arange(h * w * 3) + seq * 31) & 255).astype(np.uint8).reshape(h, w, 3)


@pytest.fixture
def new_ring(root: str) -> Iterator:
    """Factory for writer rings (closed and unlinked afterwards) plus reader attach."""
    made: list[MediaRing] = []

    def make(ident: str = "ring", **kw: float) -> MediaRing:
        params = dict(video_slots=4, max_width=16, max_height=8, audio_seconds=0.001, sample_rate=16000)
        params.update(kw)
        ring = MediaRing.create(segment_name(make_server_prefix(root=root), ident), **params)  # type: ignore[arg-type]
        made.append(ring)
        return ring

    yield make
    for ring in made:
        ring.close()
        ring.unlink()


# ------------------------------------------------------------------- video
def test_frames_round_trip_and_time_selection(new_ring) -> None:
    w = new_ring(video_slots=8)
    r = MediaRing.attach(w.name)
    assert r.latest_pts() is None and r.frame_shape is None and r.oldest_readable_pts() is None
    f, t = r.read_frames(0, 10)
    assert f.shape[0] == 0 and t.shape == (0,)
    for i in range(5):
        assert w.write_frame(i * 0.5, frame(i)) == i
    assert r.video_written() == 5 and r.latest_pts() == 2.0 and r.frame_shape == (6, 10)
    f, t = r.read_frames(0, 10)  # t1 beyond what was written: what exists
    assert f.shape == (5, 6, 10, 3) and f.dtype == np.uint8 and t.dtype == np.float64
    assert t.tolist() == [0, 0.5, 1, 1.5, 2]
    assert all(np.array_equal(f[i], frame(i)) for i in range(5))
    assert r.read_frames(0.5, 1.5)[1].tolist() == [0.5, 1.0]  # t0 inclusive, t1 exclusive
    assert r.read_frames(0.4, 1.6)[1].tolist() == [0.5, 1.0, 1.5]
    assert r.read_frames(-5, 0.01)[1].tolist() == [0.0]
    assert r.read_frames(2.01, 9)[0].shape == (0, 6, 10, 3)
    assert r.read_frames(1, 1)[1].size == 0 and r.read_frames(2, 1)[1].size == 0
    f[:] = 0  # copies, not views into the ring
    assert np.array_equal(r.read_frames(0, 0.1)[0][0], frame(0))
    r.close()


def test_video_wraparound_and_lapped(new_ring) -> None:
    w = new_ring(video_slots=4)
    r = MediaRing.attach(w.name)
    for i in range(11):  # slots reused almost three times
        w.write_frame(i, frame(i))
    assert r.video_written() == 11 and r.oldest_readable_pts() == 7.0
    f, t = r.read_frames(7, 11)  # spans the slot wrap (slots 3, 0, 1, 2)
    assert t.tolist() == [7, 8, 9, 10]
    assert all(np.array_equal(f[i], frame(7 + i)) for i in range(4))
    for t0, t1 in [(0, 20), (6, 8), (5.5, 6.5), (0, 3), (-1, 0.5)]:
        with pytest.raises(Lapped):
            r.read_frames(t0, t1)
    assert r.read_frames(7, 8)[1].tolist() == [7]  # starts exactly at the oldest survivor
    assert r.read_frames(6.5, 8)[1].tolist() == [7]  # evicted frame 6 is before t0: nothing missing
    assert r.read_frames(20, 30)[1].size == 0  # the future is just empty
    r.close()


def test_lapped_when_writer_overwrites_during_copy(new_ring, monkeypatch: pytest.MonkeyPatch) -> None:
    w = new_ring(video_slots=4)
    for i in range(4):
        w.write_frame(i, frame(i))
    r = MediaRing.attach(w.name)
    copy = r._copy_frames
    state = {"seq": 4}

    def racing_copy(*args: object) -> None:
        copy(*args)
        w.write_frame(state["seq"], frame(state["seq"]))  # the writer reuses a slot mid-read
        state["seq"] += 1

    monkeypatch.setattr(r, "_copy_frames", racing_copy)
    with pytest.raises(Lapped):
        r.read_frames(0, 2)
    monkeypatch.undo()
    f, t = r.read_frames(state["seq"] - 2, 100)  # fresh frames remain readable
    assert t.tolist() == [state["seq"] - 2, state["seq"] - 1]
    r.close()


def test_write_in_progress_hides_only_the_reused_slot(new_ring) -> None:
    w = new_ring(video_slots=4)
    for i in range(6):
        w.write_frame(i, frame(i))
    r = MediaRing.attach(w.name)
    w._hdr[mr._V_BEGIN] = 7  # simulate: frame 6 started, overwriting frame 2's slot
    w._hdrf[mr._EVICTED_PTS] = 2.0
    with pytest.raises(Lapped):
        r.read_frames(2, 4)
    assert r.read_frames(3, 10)[1].tolist() == [3, 4, 5]
    assert r.oldest_readable_pts() == 3.0
    r.close()


def test_out_buffer_and_validation(new_ring) -> None:
    w = new_ring(video_slots=8)
    r = MediaRing.attach(w.name)
    for i in range(6):
        w.write_frame(i / 10, frame(i))
    out = np.zeros((10, 6, 10, 3), np.uint8)
    f, t = r.read_frames(0.1, 0.4, out=out)
    assert f.shape == (3, 6, 10, 3) and np.shares_memory(f, out)
    assert np.array_equal(out[2], frame(3)) and not out[3:].any()
    for bad in (np.zeros((2, 6, 10, 3), np.uint8), np.zeros((10, 6, 9, 3), np.uint8), np.zeros((10, 6, 10, 3), np.float32)):
        with pytest.raises(ValueError):
            r.read_frames(0.1, 0.4, out=bad)
    with pytest.raises(ValueError):
        w.write_frame(1.0, frame(0, 6, 11))  # shape differs from the ring's
    with pytest.raises(ValueError):
        w.write_frame(1.0, frame(0, 9, 10))  # taller than max_height
    with pytest.raises(ValueError):
        w.write_frame(0.4, frame(0))  # pts going backwards
    with pytest.raises(ValueError):
        w.write_frame(1.0, frame(0).astype(np.float32))
    with pytest.raises(ValueError):
        w.write_frame(float("nan"), frame(0))
    w.write_frame(1.0, np.asfortranarray(frame(9)))  # non-contiguous input is fine
    w.write_frame(1.0, frame(10))  # equal pts are allowed and read together
    f, t = r.read_frames(1.0, 2.0)
    assert t.tolist() == [1.0, 1.0] and np.array_equal(f[0], frame(9)) and np.array_equal(f[1], frame(10))
    assert r.read_frames(0.55, 1.0)[1].size == 0
    with pytest.raises(PermissionError):
        r.write_frame(2.0, frame(0))
    with pytest.raises(PermissionError):
        r.unlink()
    r.close()


# ------------------------------------------------------------------- audio
def test_audio_round_trip_wrap_and_lapped(new_ring) -> None:
    w = new_ring(audio_seconds=0.01)  # 160 samples
    r = MediaRing.attach(w.name)
    assert r.audio_capacity == 160 and r.sample_rate == 16000
    assert r.read_audio(0, 100).shape == (0,)
    w.write_audio(np.arange(100, dtype=np.float32))
    assert r.audio_written() == 100
    assert r.read_audio(10, 20).tolist() == list(range(10, 20))
    assert r.read_audio(90, 500).tolist() == list(range(90, 100))  # truncated at written
    w.write_audio(np.arange(100, 250, dtype=np.float64))  # converted; wraps past 160
    got = r.read_audio(90, 250)
    assert got.dtype == np.float32 and got.tolist() == list(range(90, 250))
    with pytest.raises(Lapped):
        r.read_audio(89, 100)
    assert r.oldest_readable_sample() == 90
    w.write_audio(np.arange(250, 1000, dtype=np.float32))  # one chunk bigger than the ring
    assert r.audio_written() == 1000 and r.read_audio(840, 1000).tolist() == list(range(840, 1000))
    with pytest.raises(Lapped):
        r.read_audio(839, 841)
    out = np.zeros(200, np.float32)
    got = r.read_audio(900, 950, out=out)
    assert np.shares_memory(got, out) and got.tolist() == list(range(900, 950))
    with pytest.raises(ValueError):
        r.read_audio(900, 1000, out=np.zeros(10, np.float32))
    with pytest.raises(ValueError):
        r.read_audio(-1, 5)
    with pytest.raises(ValueError):
        w.write_audio(np.zeros((2, 2), np.float32))
    r.close()


def test_audio_lapped_during_copy(new_ring, monkeypatch: pytest.MonkeyPatch) -> None:
    w = new_ring(audio_seconds=0.01)
    w.write_audio(np.arange(160, dtype=np.float32))
    r = MediaRing.attach(w.name)
    copy = r._audio_copy

    def racing_copy(*args: object, **kw: object) -> None:
        copy(*args, **kw)
        w.write_audio(np.full(10, -1, np.float32))

    monkeypatch.setattr(r, "_audio_copy", racing_copy)
    with pytest.raises(Lapped):
        r.read_audio(0, 50)
    assert r.read_audio(100, 120).tolist() == list(range(100, 120))  # untouched part is fine
    r.close()


# ---------------------------------------------------------- header / misc
def test_header_counters_and_sizes(new_ring) -> None:
    w = new_ring(video_slots=3, max_width=7, max_height=5, audio_seconds=0.5, sample_rate=8000)
    need = MediaRing.bytes_needed(video_slots=3, max_width=7, max_height=5, audio_seconds=0.5, sample_rate=8000)
    assert w.nbytes == need and need == 4096 + 3 * (64 + 128) + 4000 * 4
    r = MediaRing.attach(w.name)
    assert (r.video_slots, r.max_width, r.max_height, r.sample_rate, r.audio_capacity) == (3, 7, 5, 8000, 4000)
    assert r.writer_pid == os.getpid() and not r.is_writer and w.is_writer
    assert not r.ended
    w.mark_ended()
    assert r.ended
    with pytest.raises(PermissionError):
        r.mark_ended()
    r.close()
    r.close()  # idempotent
    with MediaRing.attach(w.name) as r2:
        assert r2.name == w.name
    w.close()
    w.close()


def i420(seq: int, h: int = 6, w: int = 10) -> np.ndarray:
    """A planar I420 frame as the frontend writes it: (h * 3 / 2, w), distinct per ``seq``."""
    return ((np.arange(h * 3 // 2 * w) * 7 + seq * 13) & 255).astype(np.uint8).reshape(h * 3 // 2, w)


def test_yuv420p_ring_stores_half_the_bytes_and_round_trips(new_ring) -> None:
    kw = dict(video_slots=260, max_width=320, max_height=240, audio_seconds=26.0, sample_rate=16000)
    rgb_bytes = MediaRing.bytes_needed(**kw)
    yuv_bytes = MediaRing.bytes_needed(**kw, pixel_format="yuv420p")
    audio = 26 * 16000 * 4
    assert yuv_bytes - audio - 4096 == pytest.approx((rgb_bytes - audio - 4096) / 2, rel=0.001)
    w = new_ring(video_slots=4, pixel_format="yuv420p")
    assert w.pixel_format == "yuv420p" and w.nbytes == MediaRing.bytes_needed(
        video_slots=4, max_width=16, max_height=8, audio_seconds=0.001, pixel_format="yuv420p")
    r = MediaRing.attach(w.name)
    assert r.pixel_format == "yuv420p"
    for i in range(6):  # wraps the 4 slots
        w.write_frame(i * 0.1, i420(i))
    assert r.frame_shape == (6, 10)  # the picture's size, not the array's
    f, t = r.read_frames(0.2, 1.0)
    assert f.shape == (4, 9, 10) and f.dtype == np.uint8 and np.allclose(t, [0.2, 0.3, 0.4, 0.5])
    assert all(np.array_equal(f[k], i420(k + 2)) for k in range(4))
    assert r.read_frames(0.9, 2.0)[0].shape == (0, 9, 10)
    out = np.zeros((5, 9, 10), np.uint8)
    assert np.array_equal(r.read_frames(0.4, 0.6, out=out)[0], out[:2])
    with pytest.raises(Lapped):
        r.read_frames(0.0, 0.3)
    with pytest.raises(ValueError, match="yuv420p"):
        w.write_frame(1.0, frame(0))  # an RGB frame in an I420 ring
    with pytest.raises(ValueError, match="yuv420p"):
        w.write_frame(1.0, i420(0)[:8])  # rows that are no I420 picture
    with pytest.raises(ValueError, match="differs"):
        w.write_frame(1.0, i420(0, h=4))
    r.close()


def test_rgb_ring_rejects_i420_frames_and_unknown_formats(new_ring) -> None:
    w = new_ring()
    assert w.pixel_format == "rgb24"
    with pytest.raises(ValueError, match="rgb24"):
        w.write_frame(0.0, i420(0))
    with pytest.raises(ValueError, match="pixel format"):
        new_ring("bgr", pixel_format="bgr24")
    with pytest.raises(ValueError, match="pixel format"):
        MediaRing.bytes_needed(video_slots=1, max_width=2, max_height=2, audio_seconds=1, pixel_format="nv12")


def test_attach_validates_header(root: str) -> None:
    prefix = make_server_prefix(root=root)
    missing = segment_name(prefix, "missing")
    with pytest.raises(FileNotFoundError):
        MediaRing.attach(missing)
    foreign = Segment.create(segment_name(prefix, "foreign"), 8192)
    foreign.buf[:8] = b"NOTARING"
    with pytest.raises(RingFormatError, match="foreign"):
        MediaRing.attach(foreign.name)
    foreign.buf[:8] = bytes(8)
    with pytest.raises(RingFormatError, match="not initialised"):
        MediaRing.attach(foreign.name)
    tiny = Segment.create(segment_name(prefix, "tiny"), 100)
    with pytest.raises(RingFormatError, match="truncated"):
        MediaRing.attach(tiny.name)
    empty = segment_name(prefix, "empty")
    os.close(os.open(f"/dev/shm/{empty}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    with pytest.raises(RingFormatError, match="empty"):
        MediaRing.attach(empty)
    ring = MediaRing.create(segment_name(prefix, "ring"), video_slots=2, max_width=16, max_height=16, audio_seconds=0.1)
    MediaRing.attach(ring.name).close()
    ring._hdr[mr._VERSION] = 99
    with pytest.raises(RingFormatError, match="version"):
        MediaRing.attach(ring.name)
    ring._hdr[mr._VERSION] = 1  # a frontend from before a reload still writes version 1: RGB rings
    with MediaRing.attach(ring.name) as old:
        assert old.pixel_format == "rgb24"
    ring._hdr[mr._VERSION] = mr.VERSION
    ring._hdr[mr._SLOTS] = 1000  # layout no longer adds up
    with pytest.raises(RingFormatError, match="layout"):
        MediaRing.attach(ring.name)
    ring._hdr[mr._SLOTS] = 2
    ring._hdr[mr._PIXFMT] = 7  # no such pixel format
    with pytest.raises(RingFormatError, match="layout"):
        MediaRing.attach(ring.name)
    ring._hdr[mr._PIXFMT] = 1  # a format whose slots would not fit this layout
    with pytest.raises(RingFormatError, match="layout"):
        MediaRing.attach(ring.name)
    for seg in (foreign, tiny):
        seg.close()
        seg.unlink()
    ring.close()
    ring.unlink()  # `empty` is removed by the root fixture


# --------------------------------------------------------------- stress
def _stress_shape(run: int, rng: random.Random) -> tuple[int, int]:
    lo_hi = [((120, 240), (160, 320)), ((16, 96), (16, 128)), ((1, 12), (1, 12))][run]
    return rng.randint(*lo_hi[0]), rng.randint(*lo_hi[1])


@pytest.mark.parametrize("run", [0, 1, 2])
def test_multiprocess_stress_no_torn_reads(run: int, root: str, child_env: dict[str, str]) -> None:
    seed = int(os.environ.get("SHM_STRESS_SEED", random.randrange(1 << 30))) + run
    rng = random.Random(seed)
    h, w = _stress_shape(run, rng)
    maxh, maxw = h + rng.randint(0, 8), w + rng.randint(0, 8)
    slots = rng.randint(4, 12)
    audio_s = rng.choice([0.01, 0.02, 0.05])
    name = segment_name(make_server_prefix(root=root), f"stress{run}")
    info = f"seed={seed} frame={h}x{w} max={maxh}x{maxw} slots={slots} audio_s={audio_s}"

    def spawn(*args: object) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(STRESS), *map(str, args)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=child_env)

    procs: list[subprocess.Popen[str]] = []
    try:
        writer = spawn("writer", name, seed, 2.0, h, w, maxh, maxw, slots, audio_s)
        procs.append(writer)
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "READY", info
        readers = [spawn("reader", name, seed * 10 + i) for i in range(2)]
        procs += readers
        for p in readers:
            assert p.stdout is not None and p.stdout.readline().strip() == "READY", info
        writer.stdin.write("GO\n")
        writer.stdin.flush()
        wstats = json.loads(writer.stdout.readline())
        stats = [json.loads(p.communicate(timeout=30)[0]) for p in readers]
        writer.communicate(timeout=30)
        assert all(p.returncode == 0 for p in procs), info
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    total = {k: sum(s[k] for s in stats) for k in stats[0] if k != "errors"}
    info += f" writer={wstats} readers={total} errors={[s['errors'] for s in stats]}"
    assert wstats["frames"] > 20 * slots, info  # many wraparounds of both rings
    assert wstats["samples"] > 20 * audio_s * 16000, info
    assert total["torn_video"] == 0 and total["torn_audio"] == 0 and total["wrong"] == 0, info
    assert total["lapped_video"] > 0 and total["lapped_audio"] > 0, info
    assert total["ok_video"] >= 200 and total["ok_audio"] >= 200 and total["frames"] > 0, info
    print(info)
