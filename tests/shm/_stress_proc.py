"""Child processes for the media-ring stress test (run as a script, not collected).

    python _stress_proc.py writer NAME SEED SECONDS H W MAXH MAXW SLOTS AUDIO_SECONDS
    python _stress_proc.py reader NAME SEED

Frame ``n`` has pts ``n / 8`` (exact in binary) and pixel bytes
``(i + 31 n) mod 256`` over the flattened (H, W, 3) array; audio sample ``k`` is
``k mod 16777213`` as float32 (exact). Readers verify every frame and sample
they get back and print one JSON line of counters.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time

import numpy as np

from shm import Lapped, MediaRing

FPS = 8  # pts = seq / FPS, exactly representable


def frame_pattern(base: np.ndarray, seqs: np.ndarray) -> np.ndarray:
    """Expected flattened bytes of frames ``seqs`` ((T, H*W*3) uint8)."""
    return ((base[None, :].astype(np.int64) + (seqs[:, None] * 31)) & 255).astype(np.uint8)


def audio_pattern(k0: int, n: int) -> np.ndarray:
    return (np.arange(k0, k0 + n, dtype=np.int64) % 16777213).astype(np.float32)


def writer(name: str, seed: int, seconds: float, h: int, w: int, maxh: int, maxw: int, slots: int, audio_s: float) -> None:
    rng = random.Random(seed)
    ring = MediaRing.create(name, video_slots=slots, max_width=maxw, max_height=maxh, audio_seconds=audio_s)
    base = (np.arange(h * w * 3) & 255).astype(np.uint8)
    print("READY", flush=True)
    sys.stdin.readline()  # GO
    n = k = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        frame = np.add(base, np.uint8((n * 31) & 255), dtype=np.uint8).reshape(h, w, 3)
        ring.write_frame(n / FPS, frame)
        n += 1
        chunk = rng.randint(1, 2 * ring.audio_capacity + 1) if rng.random() < 0.1 else rng.randint(1, 400)
        ring.write_audio(audio_pattern(k, chunk))
        k += chunk
        if rng.random() < 0.7:  # mostly paced, sometimes bursts that lap readers mid-copy
            time.sleep(rng.choice((0.0, 0.0002, 0.001)))
    ring.mark_ended()
    print(json.dumps({"frames": n, "samples": k}), flush=True)
    sys.stdin.read()  # wait until the test is done with the readers
    ring.close()
    ring.unlink()


def _pick(rng: random.Random, written: int, span: int) -> int:
    """A start index: recent, at the overwrite edge, long gone, or in the future."""
    mode = rng.random()
    if mode < 0.4:
        return rng.randint(max(0, written - span // 2), max(0, written - 1))
    if mode < 0.7:
        return max(0, written - span + rng.randint(-1, 2))
    if mode < 0.9:
        return rng.randint(0, max(0, written - span))
    return written + rng.randint(0, 3)


def reader(name: str, seed: int) -> None:
    rng = random.Random(seed)
    ring = MediaRing.attach(name)
    print("READY", flush=True)
    c = dict(ok_video=0, ok_audio=0, frames=0, samples=0, lapped_video=0, lapped_audio=0,
             torn_video=0, torn_audio=0, wrong=0, errors=[])
    base: np.ndarray | None = None
    out_f: np.ndarray | None = None
    out_a = np.empty(ring.audio_capacity + 8, np.float32)

    def wrong(msg: str) -> None:
        c["wrong"] += 1
        if len(c["errors"]) < 5:
            c["errors"].append(msg)

    last_round = False
    while True:
        if ring.ended:
            last_round = True
        for _ in range(50):
            if rng.random() < 0.5:
                written = ring.video_written()
                if not written:
                    continue
                shape = ring.frame_shape
                assert shape is not None
                if base is None:
                    base = (np.arange(shape[0] * shape[1] * 3) & 255).astype(np.uint8)
                    out_f = np.empty((ring.video_slots + 4, shape[0], shape[1], 3), np.uint8)
                s0 = _pick(rng, written, ring.video_slots)
                t0 = s0 / FPS - rng.uniform(0, 0.99) / FPS  # ceil(t0 * FPS) == s0
                t1 = t0 + rng.randint(0, ring.video_slots) / FPS
                try:
                    frames, times = ring.read_frames(t0, t1, out=out_f if rng.random() < 0.5 else None)
                except Lapped:
                    c["lapped_video"] += 1
                    continue
                first, stop = max(0, math.ceil(t0 * FPS)), max(0, math.ceil(t1 * FPS))
                seqs = np.arange(first, first + len(times))
                if frames.shape[1:] != (*shape, 3) or len(frames) != len(times):
                    wrong(f"shape {frames.shape} times {times.shape}")
                elif not np.array_equal(times, seqs / FPS):
                    wrong(f"times {times[:4]}.. for [{t0}, {t1}) expected from seq {first}")
                elif first + len(times) > stop or first + len(times) < min(stop, written):
                    wrong(f"{len(times)} frames for [{t0}, {t1}) with {written} written")
                else:
                    bad = (frames.reshape(len(seqs), base.size) != frame_pattern(base, seqs)).any(axis=1)
                    c["torn_video"] += int(bad.sum())
                    c["ok_video"] += 1
                    c["frames"] += len(seqs)
            else:
                written = ring.audio_written()
                k0 = _pick(rng, written, ring.audio_capacity)
                k1 = k0 + rng.randint(0, ring.audio_capacity)
                try:
                    got = ring.read_audio(k0, k1, out=out_a if rng.random() < 0.5 else None)
                except Lapped:
                    c["lapped_audio"] += 1
                    continue
                if len(got) > k1 - k0 or len(got) < min(k1, written) - k0:
                    wrong(f"{len(got)} samples for [{k0}, {k1}) with {written} written")
                else:
                    c["torn_audio"] += int((got != audio_pattern(k0, len(got))).sum())
                    c["ok_audio"] += 1
                    c["samples"] += len(got)
        if last_round:
            break
    ring.close()
    print(json.dumps(c), flush=True)


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    if role == "writer":
        writer(args[0], int(args[1]), float(args[2]), *map(int, args[3:8]), float(args[8]))
    else:
        reader(args[0], int(args[1]))
