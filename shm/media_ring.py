"""Per-session media ring in one shared-memory segment: one writer, many readers.

Layout (all offsets 64-byte aligned, little-endian, native int64/float64)::

    [0, 4096)          header: int64 words (magic, version, layout, counters)
    [voff, aoff)       video ring: ``video_slots`` slots of ``slot_stride`` bytes;
                       slot = 64-byte meta (seq_start, seq_end, pts, h, w) + pixels
                       at the start of the data area, in the ring's pixel format:
                       ``rgb24``: (h, w, 3) uint8, RGB, row-major (3 bytes a pixel);
                       ``yuv420p``: planar I420 as one (h * 3 / 2, w) uint8 array
                       (Y rows, then the U and V quarter planes; 1.5 bytes a pixel, h and w even)
    [aoff, total)      audio ring: ``audio_capacity`` float32 mono samples

Video frame number ``n`` (0-based write sequence) lives in slot ``n % slots``;
audio sample ``k`` (media time ``k / sample_rate``) lives at ``k % capacity``.

Concurrency protocol (seqlock). The writer publishes, in program order:
``evicted_pts`` (pts of the frame being overwritten), the *begin* counter
(``frames started``), the slot's ``seq_start``; then the pixels; then the
slot's ``seq_end`` and the *written* counter (``frames completed``). Audio
uses the same begin/written pair. A reader loads *written*, copies only
items below it, then re-loads *begin*: item ``s`` is intact iff
``s >= begin - capacity`` (its slot has not started being reused), and the
copied slot's ``seq_end`` (read before) and ``seq_start`` (read after) must
both equal ``s``. Anything else is a lap: the copy is discarded and
:class:`Lapped` raised (or the read retried when only the search raced).
``read_frames`` binary-searches pts only over seqs ``[begin - slots, written)``;
when the range starts at the oldest survivor and ``evicted_pts >= t0``,
frames of the range are gone, which is also a lap.

Memory ordering: every counter is an aligned 8-byte word, read/written by a
single load/store (numpy scalar get/set on an aligned int64/float64). On
x86-64 (TSO: stores become visible in program order, loads are not reordered
with older loads) the protocol needs no fences. For weakly ordered CPUs
(aarch64) :func:`_fence` sits between the counter and the data accesses on
both sides. It is a ``threading.Lock`` release followed by an acquire; on
glibc these are release/acquire atomics (CPython 3.11 locks are POSIX
semaphores), and on ARMv8 a store-release followed by a load-acquire is
ordered (RCsc), so the pair acts as a full barrier for the surrounding plain
accesses. Cost: ~0.2 us per call, a few calls per read or write. The seqlock
re-check then makes every overlap with the writer detectable; a reader
never writes to the segment (it is mapped read-only).
"""

from __future__ import annotations

import math
import os
import threading
from types import TracebackType

import numpy as np

from .segment import Segment

MAGIC = int.from_bytes(b"I1SRING\x01", "little")
VERSION = 2  # 2: the pixel format word (version 1 rings were rgb24 only)
HEADER_BYTES = 4096
SLOT_META_BYTES = 64
ALIGN = 64
_RETRIES = 4

# int64 header word indices
_MAGIC, _VERSION, _HDR_BYTES, _TOTAL, _SLOTS, _MAXW, _MAXH, _STRIDE = range(8)
_VOFF, _RATE, _ACAP, _AOFF, _WRITER_PID, _PIXFMT = range(8, 14)
_V_BEGIN, _V_WRITTEN, _FRAME_H, _FRAME_W, _ENDED = range(16, 21)
_A_BEGIN, _A_WRITTEN = 24, 25
# float64 header word indices (same memory, reinterpreted)
_LATEST_PTS, _EVICTED_PTS = 32, 33
# slot meta int64 word indices (pts is float64 word 2)
_SEQ_START, _SEQ_END, _PTS, _SH, _SW = range(5)


# pixel formats (FFmpeg's names, as PyAV's reformatter takes them) and their header codes
PIXEL_FORMATS = ("rgb24", "yuv420p")


def pixel_format_code(pixel_format: str) -> int:
    """The header code of ``pixel_format``; ValueError naming the known formats for any other."""
    if pixel_format not in PIXEL_FORMATS:
        raise ValueError(f"unknown pixel format {pixel_format!r}: one of {', '.join(PIXEL_FORMATS)}")
    return PIXEL_FORMATS.index(pixel_format)


def frame_array_shape(pixel_format: str, h: int, w: int) -> tuple[int, ...]:
    """The array shape one ``h`` x ``w`` frame has in ``pixel_format``."""
    pixel_format_code(pixel_format)  # an unknown format says so
    return (h, w, 3) if pixel_format == "rgb24" else (h * 3 // 2, w)


def frame_size_of(pixel_format: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """(h, w) of a frame array of ``shape`` in ``pixel_format``; ValueError if it is not one."""
    pixel_format_code(pixel_format)  # an unknown format says so
    if pixel_format == "rgb24" and len(shape) == 3 and shape[2] == 3:
        return int(shape[0]), int(shape[1])
    if pixel_format == "yuv420p" and len(shape) == 2 and shape[0] % 3 == 0 and shape[1] % 2 == 0:
        return int(shape[0]) * 2 // 3, int(shape[1])  # even: a multiple of 3 rows holds 2 Y rows a third
    want = "(H, W, 3)" if pixel_format == "rgb24" else "(H * 3 / 2, W) with H and W even"
    raise ValueError(f"a {pixel_format} frame must be a {want} uint8 array, got shape {shape}")


class Lapped(Exception):
    """The writer overwrote (part of) the requested range before or during the copy."""


class RingFormatError(ValueError):
    """The segment is not a (complete, compatible) media ring."""


_fence_lock = threading.Lock()


def _fence() -> None:
    """Full memory barrier on mainstream platforms (see module docstring)."""
    _fence_lock.acquire()
    _fence_lock.release()
    _fence_lock.acquire()
    _fence_lock.release()


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _layout(slots: int, max_w: int, max_h: int, acap: int, pixfmt: int) -> tuple[int, int, int, int]:
    """(slot_stride, video_offset, audio_offset, total_bytes)."""
    stride = SLOT_META_BYTES + _align(math.prod(frame_array_shape(PIXEL_FORMATS[pixfmt], max_h, max_w)))
    voff = HEADER_BYTES
    aoff = voff + slots * stride
    return stride, voff, aoff, aoff + _align(acap * 4)


def _audio_capacity(audio_seconds: float, sample_rate: int) -> int:
    return int(math.ceil(audio_seconds * sample_rate))


class MediaRing:
    """A session's video + audio ring; see the module docstring for the protocol.

    Exactly one process writes (the one that called :meth:`create`); any number
    of processes :meth:`attach` read-only and read by media time.
    """

    def __init__(self, seg: Segment, writer: bool) -> None:
        self._seg = seg
        self._writer = writer
        buf = seg.buf
        self._hdr = np.ndarray((HEADER_BYTES // 8,), np.int64, buf)
        self._hdrf = np.ndarray((HEADER_BYTES // 8,), np.float64, buf)
        h = self._hdr
        self._slots, self._max_w, self._max_h = int(h[_SLOTS]), int(h[_MAXW]), int(h[_MAXH])
        self._stride, voff = int(h[_STRIDE]), int(h[_VOFF])
        self._rate, self._acap, aoff = int(h[_RATE]), int(h[_ACAP]), int(h[_AOFF])
        self._pixfmt = PIXEL_FORMATS[int(h[_PIXFMT])]
        n = self._slots
        self._meta = np.ndarray((n, 8), np.int64, buf, voff, (self._stride, 8))
        self._pts = np.ndarray((n,), np.float64, buf, voff + 8 * _PTS, (self._stride,))
        self._data_off = voff + SLOT_META_BYTES
        self._audio = np.ndarray((self._acap,), np.float32, buf, aoff)
        self._frames_view: np.ndarray | None = None  # (slots, *frame array shape) view, once the shape is known
        # writer-side cache of the shared counters
        self._vw = int(h[_V_WRITTEN])
        self._aw = int(h[_A_WRITTEN])
        self._last_pts = float(self._hdrf[_LATEST_PTS])

    # ------------------------------------------------------------------ setup
    @staticmethod
    def bytes_needed(
        *, video_slots: int, max_width: int, max_height: int, audio_seconds: float, sample_rate: int = 16000,
        pixel_format: str = "rgb24",
    ) -> int:
        """Shared-memory bytes one ring with these parameters occupies."""
        return _layout(video_slots, max_width, max_height, _audio_capacity(audio_seconds, sample_rate),
                       pixel_format_code(pixel_format))[3]

    @classmethod
    def create(
        cls,
        name: str,
        *,
        video_slots: int,
        max_width: int,
        max_height: int,
        audio_seconds: float,
        sample_rate: int = 16000,
        pixel_format: str = "rgb24",
    ) -> MediaRing:
        """Create the segment and its header; the returned ring is the writer and owner."""
        acap = _audio_capacity(audio_seconds, sample_rate)
        pixfmt = pixel_format_code(pixel_format)
        if min(video_slots, max_width, max_height, sample_rate, acap) <= 0:
            raise ValueError("video_slots, max_width, max_height, sample_rate and audio_seconds must be > 0")
        stride, voff, aoff, total = _layout(video_slots, max_width, max_height, acap, pixfmt)
        seg = Segment.create(name, total)
        try:
            hdr = np.ndarray((HEADER_BYTES // 8,), np.int64, seg.buf)
            hdrf = np.ndarray((HEADER_BYTES // 8,), np.float64, seg.buf)
            hdr[_VERSION], hdr[_HDR_BYTES], hdr[_TOTAL] = VERSION, HEADER_BYTES, total
            hdr[_SLOTS], hdr[_MAXW], hdr[_MAXH], hdr[_STRIDE] = video_slots, max_width, max_height, stride
            hdr[_VOFF], hdr[_RATE], hdr[_ACAP], hdr[_AOFF] = voff, sample_rate, acap, aoff
            hdr[_WRITER_PID], hdr[_PIXFMT] = os.getpid(), pixfmt
            hdrf[_LATEST_PTS] = hdrf[_EVICTED_PTS] = -math.inf
            meta = np.ndarray((video_slots, 2), np.int64, seg.buf, voff, (stride, 8))
            meta[:] = -1  # seq_start / seq_end of never-written slots
            del meta
            _fence()
            hdr[_MAGIC] = MAGIC  # last: a header with a magic is complete
            del hdr, hdrf
            return cls(seg, writer=True)
        except BaseException:
            seg.close()
            seg.unlink()
            raise

    @classmethod
    def attach(cls, name: str) -> MediaRing:
        """Map an existing ring read-only (reader); validates magic, version and layout."""
        try:
            seg = Segment.attach(name, readonly=True)
        except ValueError as exc:
            raise RingFormatError(f"{name!r}: {exc}") from None
        try:
            if seg.size < HEADER_BYTES:
                raise RingFormatError(f"{name!r}: truncated ({seg.size} bytes < {HEADER_BYTES}-byte header)")
            hdr = np.ndarray((16,), np.int64, seg.buf)
            magic, version = int(hdr[_MAGIC]), int(hdr[_VERSION])
            words = [int(x) for x in hdr[_TOTAL:_AOFF + 1]]
            pixfmt = int(hdr[_PIXFMT])
            del hdr
            if magic != MAGIC:
                what = "not initialised yet" if magic == 0 else "foreign segment"
                raise RingFormatError(f"{name!r}: bad magic {magic:#018x} ({what})")
            if version not in (1, VERSION):  # 1: written by a frontend from before a reload; rgb24 (word 0)
                raise RingFormatError(f"{name!r}: media ring version {version}, expected {VERSION}")
            total, slots, max_w, max_h, stride, voff, rate, acap, aoff = words
            if min(slots, max_w, max_h, rate, acap) <= 0 or not 0 <= pixfmt < len(PIXEL_FORMATS):
                raise RingFormatError(f"{name!r}: corrupt layout {words + [pixfmt]}")
            if _layout(slots, max_w, max_h, acap, pixfmt) != (stride, voff, aoff, total):
                raise RingFormatError(f"{name!r}: corrupt layout {words}")
            if total > seg.size:
                raise RingFormatError(f"{name!r}: truncated ({seg.size} bytes, header says {total})")
            return cls(seg, writer=False)
        except BaseException:
            seg.close()
            raise

    def close(self) -> None:
        """Drop all views into the mapping, then unmap (idempotent)."""
        self._hdr = self._hdrf = self._meta = self._pts = self._audio = self._frames_view = None  # type: ignore[assignment]
        self._seg.close()

    def unlink(self) -> None:
        """Remove the segment name (writer/creator only)."""
        self._seg.unlink()

    def __enter__(self) -> MediaRing:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return self._seg.name

    @property
    def nbytes(self) -> int:
        return self._seg.size

    @property
    def is_writer(self) -> bool:
        return self._writer

    @property
    def video_slots(self) -> int:
        return self._slots

    @property
    def max_width(self) -> int:
        return self._max_w

    @property
    def max_height(self) -> int:
        return self._max_h

    @property
    def pixel_format(self) -> str:
        """How frames are stored and read back: ``rgb24`` or ``yuv420p`` (see the module docstring)."""
        return self._pixfmt

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def audio_capacity(self) -> int:
        return self._acap

    @property
    def frame_shape(self) -> tuple[int, int] | None:
        """(H, W) of this ring's frames, or None before the first frame."""
        h, w = int(self._hdr[_FRAME_H]), int(self._hdr[_FRAME_W])
        return (h, w) if h else None

    @property
    def ended(self) -> bool:
        return bool(self._hdr[_ENDED])

    @property
    def writer_pid(self) -> int:
        return int(self._hdr[_WRITER_PID])

    def video_written(self) -> int:
        """Frames completely written so far."""
        return int(self._hdr[_V_WRITTEN])

    def audio_written(self) -> int:
        """Audio samples completely written so far."""
        return int(self._hdr[_A_WRITTEN])

    def latest_pts(self) -> float | None:
        """pts of the newest complete frame, or None."""
        return float(self._hdrf[_LATEST_PTS]) if self.video_written() else None

    def oldest_readable_pts(self) -> float | None:
        """pts of the oldest frame still intact in the ring, or None."""
        n = self._slots
        for _ in range(_RETRIES):
            w = int(self._hdr[_V_WRITTEN])
            _fence()
            s = max(0, int(self._hdr[_V_BEGIN]) - n)
            if w == 0 or s >= w:
                continue
            p = float(self._pts[s % n])
            _fence()
            if s >= int(self._hdr[_V_BEGIN]) - n:
                return p
        return None

    def oldest_readable_sample(self) -> int:
        """Index of the oldest audio sample still in the ring."""
        return max(0, self.audio_written() - self._acap)

    # ----------------------------------------------------------------- writer
    def _require_writer(self) -> None:
        if not self._writer:
            raise PermissionError(f"media ring {self.name!r} is attached read-only; only its creator writes")

    def _view(self, h: int, w: int) -> np.ndarray:
        """(slots, *frame array shape) view of the slots' pixels for ``h`` x ``w`` frames."""
        shape = frame_array_shape(self._pixfmt, h, w)
        v = self._frames_view
        if v is None or v.shape[1:] != shape:
            strides = tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))  # C order, uint8
            v = np.ndarray((self._slots, *shape), np.uint8, self._seg.buf, self._data_off, (self._stride, *strides))
            self._frames_view = v
        return v

    def write_frame(self, pts: float, frame: np.ndarray) -> int:
        """Copy one frame in the ring's pixel format into the next slot; returns its sequence number.

        ``rgb24``: an (H, W, 3) uint8 array; ``yuv420p``: (H * 3 / 2, W) uint8 (PyAV's
        ``to_ndarray()`` of a yuv420p frame). pts must be finite and non-decreasing; all
        frames of a ring must share one shape (set by the first frame).
        """
        self._require_writer()
        pts = float(pts)
        if not math.isfinite(pts):
            raise ValueError(f"pts must be finite, got {pts}")
        if self._vw and pts < self._last_pts:
            raise ValueError(f"pts must not decrease: {pts} after {self._last_pts}")
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            raise ValueError(f"a {self._pixfmt} frame must be a uint8 array")
        h, w = frame_size_of(self._pixfmt, frame.shape)
        if not (0 < h <= self._max_h and 0 < w <= self._max_w):
            raise ValueError(f"frame {h}x{w} exceeds ring max {self._max_h}x{self._max_w} (or is empty)")
        hdr, meta = self._hdr, self._meta
        shape = self.frame_shape
        if shape is None:
            hdr[_FRAME_H], hdr[_FRAME_W] = h, w
        elif shape != (h, w):
            raise ValueError(f"frame shape {h}x{w} differs from this ring's {shape[0]}x{shape[1]}")
        n = self._vw
        slot = n % self._slots
        if n >= self._slots:
            self._hdrf[_EVICTED_PTS] = self._pts[slot]
        hdr[_V_BEGIN] = n + 1
        meta[slot, _SEQ_START] = n
        _fence()
        self._pts[slot] = pts
        meta[slot, _SH], meta[slot, _SW] = h, w
        self._view(h, w)[slot] = frame
        _fence()
        meta[slot, _SEQ_END] = n
        self._hdrf[_LATEST_PTS] = pts
        hdr[_V_WRITTEN] = n + 1
        self._vw, self._last_pts = n + 1, pts
        return n

    def write_audio(self, samples: np.ndarray) -> int:
        """Append mono samples (converted to float32 if needed); returns the new total."""
        self._require_writer()
        a = np.asarray(samples, dtype=np.float32)
        if a.ndim != 1:
            raise ValueError("audio samples must be 1-D (mono)")
        n, cap, k = len(a), self._acap, self._aw
        if n == 0:
            return k
        start = k
        if n > cap:  # only the last `cap` samples can survive anyway
            a, start = a[n - cap:], k + n - cap
        self._hdr[_A_BEGIN] = k + n
        _fence()
        self._audio_copy(start, a, into_ring=True)
        _fence()
        self._hdr[_A_WRITTEN] = k + n
        self._aw = k + n
        return k + n

    def mark_ended(self) -> None:
        """Flag end of stream (readers see ``ended``)."""
        self._require_writer()
        _fence()
        self._hdr[_ENDED] = 1

    # ----------------------------------------------------------------- reader
    def _audio_copy(self, k: int, arr: np.ndarray, into_ring: bool) -> None:
        """Copy between ``arr`` and ring samples [k, k+len(arr)), handling wrap."""
        cap, ring, done = self._acap, self._audio, 0
        while done < len(arr):
            pos = (k + done) % cap
            m = min(len(arr) - done, cap - pos)
            if into_ring:
                ring[pos:pos + m] = arr[done:done + m]
            else:
                arr[done:done + m] = ring[pos:pos + m]
            done += m

    def read_audio(self, k0: int, k1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Copy of samples [k0, min(k1, written)); raises :class:`Lapped` if overwritten.

        ``out`` (float32, len >= the result) receives the samples; a view of it
        is returned. On Lapped its contents are unspecified.
        """
        k0, k1 = int(k0), int(k1)
        if k0 < 0 or k1 < k0:
            raise ValueError(f"bad sample range [{k0}, {k1})")
        w = int(self._hdr[_A_WRITTEN])
        _fence()
        n = max(0, min(k1, w) - k0)
        dst = _out_slice(out, (n,), np.float32)
        if n == 0:
            return dst
        if k0 < w - self._acap:
            raise Lapped(f"audio [{k0}, {k1}) already overwritten (oldest is {w - self._acap})")
        self._audio_copy(k0, dst, into_ring=False)
        _fence()
        if k0 < int(self._hdr[_A_BEGIN]) - self._acap:
            raise Lapped(f"audio [{k0}, {k1}) overwritten during the copy")
        return dst

    def _lower_bound(self, t: float, lo: int, hi: int, probed: list[int]) -> int:
        """First seq in [lo, hi) with pts >= t (hi if none); records the lowest probe."""
        pts, n = self._pts, self._slots
        while lo < hi:
            mid = (lo + hi) // 2
            probed[0] = min(probed[0], mid)
            if pts[mid % n] < t:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def read_frames(self, t0: float, t1: float, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Copies of all frames with t0 <= pts < t1, oldest first, and their pts.

        Returns ``(frames, times (T,) float64)``, frames (T, *frame array shape) uint8 in the
        ring's pixel format: (T, H, W, 3) for ``rgb24``, (T, H * 3 / 2, W) for ``yuv420p``.
        Frames newer than the last complete write are simply not returned. Raises
        :class:`Lapped` if any frame in the range was overwritten before or
        during the copy (conservatively also when the range starts before the
        oldest surviving frame and something at/after ``t0`` was evicted).
        ``out`` ((>=T, *frame array shape) uint8) receives the frames; a view is returned
        (its contents are unspecified after Lapped).
        """
        t0, t1, nslots = float(t0), float(t1), self._slots
        if not t1 > t0:
            shape = self.frame_shape or (0, 0)
            return _out_slice(out, (0, *frame_array_shape(self._pixfmt, *shape)), np.uint8), np.empty(0, np.float64)
        for _ in range(_RETRIES):
            w = int(self._hdr[_V_WRITTEN])
            _fence()
            shape = self.frame_shape or (0, 0)
            lo = min(w, max(0, int(self._hdr[_V_BEGIN]) - nslots))  # oldest slot not being reused
            probed = [w]
            r = self._lower_bound(t0, lo, w, probed)
            e = self._lower_bound(t1, r, w, probed)
            count = e - r
            frames = _out_slice(out, (count, *frame_array_shape(self._pixfmt, *shape)), np.uint8)
            times = np.empty(count, np.float64)
            if count:
                slots = np.arange(r, e) % nslots
                seq_end = self._meta[slots, _SEQ_END]
                sizes = self._meta[slots][:, [_SH, _SW]]
                times[:] = self._pts[slots]
                self._copy_frames(r, e, frames, shape)
                _fence()
                seq_start = self._meta[slots, _SEQ_START]
            _fence()
            begin = int(self._hdr[_V_BEGIN])
            evicted = float(self._hdrf[_EVICTED_PTS])
            if probed[0] < begin - nslots:
                continue  # the writer reused a slot we looked at: search or copy may be torn
            if count:
                seqs = np.arange(r, e)
                if not (np.array_equal(seq_end, seqs) and np.array_equal(seq_start, seqs)):
                    continue
                if not (sizes == shape).all():
                    raise ValueError(f"media ring {self.name!r} holds frames of different shapes")
            if r == lo and lo > 0 and evicted >= t0:
                raise Lapped(f"frames in [{t0}, {t1}) were overwritten (evicted up to pts {evicted})")
            return frames, times
        raise Lapped(f"frames in [{t0}, {t1}) kept being overwritten during the copy")

    def _copy_frames(self, r: int, e: int, dst: np.ndarray, shape: tuple[int, int]) -> None:
        """Copy seqs [r, e) into ``dst`` (at most two contiguous slot runs)."""
        view, nslots, i = self._view(*shape), self._slots, 0
        while r < e:
            slot = r % nslots
            m = min(e - r, nslots - slot)
            dst[i:i + m] = view[slot:slot + m]
            i, r = i + m, r + m


def _out_slice(out: np.ndarray | None, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A fresh array of ``shape``, or the leading part of the caller's ``out``."""
    if out is None:
        return np.empty(shape, dtype)
    if out.dtype != dtype or out.ndim != len(shape):
        raise ValueError(f"out must be a {len(shape)}-D {np.dtype(dtype).name} array, got {out.dtype} {out.shape}")
    if shape[0] and (out.shape[1:] != shape[1:] or out.shape[0] < shape[0]):
        raise ValueError(f"out must be {np.dtype(dtype).name} with shape (>={shape[0]}, *{shape[1:]}), got {out.dtype} {out.shape}")
    return out[: shape[0]]
