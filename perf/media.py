"""Test media for the perf suite: real VP8 + Opus WebM, cut the way a recorder emits it.

``clip(seconds, width, height, fps, face)`` encodes (and caches under ``perf/results/cache``) a
WebM made by libvpx/libopus from :mod:`inter1srv.synthmedia`'s script (head moves: nod, still,
fidget, leaving the frame, shake; speech-like audio), in MediaRecorder's live layout
(unknown-size Segment/Clusters). ``face="photo"`` (default) draws a real face, the evaluation
corpus's astronaut photo (scikit-image), moved by that script, so the face tracker and the
expression network do the work a camera's face gives them; ``face="disc"`` draws synthmedia's
textured disc, which the MTCNN detector rightly does not take for a face (the figures of the
report before 2026-12-06 were measured with it: no face was tracked).

``recorder_chunks(webm, timeslice)`` cuts it at block boundaries into chunks of about
``timeslice`` seconds of media, like ``MediaRecorder.start(timeslice)``: the first chunk
carries the EBML header, Info, Tracks and the first ``timeslice`` of blocks.  Each chunk
records the media time its newest block reaches; a real-time client sends chunk ``k`` at
``t0 + chunk.media_end`` (the recorder emits a chunk once its media has been captured).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inter1srv.ingest import ebml

RESULTS = Path(__file__).resolve().parent / "results"
CACHE = RESULTS / "cache"


@dataclass
class Chunk:
    data: bytes
    media_start: float  # time of the chunk's first block (seconds from the stream's first block)
    media_end: float  # time of its newest block


FACES = ("photo", "disc")


def photo_frame(script, t: float, width: int, height: int) -> np.ndarray:
    """The script's head motion applied to the evaluation corpus's face photo, scaled to the frame."""
    import cv2

    from workers.evaluation.corpus import HEIGHT, WIDTH, Seg, head_pose, render

    seg = script.segment_at(t)
    start = next(script.start_of(i) for i, s in enumerate(script.segments) if s is seg)
    motion = "still" if seg.motion == "fidget" else seg.motion
    pose = head_pose(Seg(motion, seg.seconds, motion), t - start, seg.seconds)
    if pose is not None and seg.motion == "fidget":  # synthmedia's fidget path: drifting, jittering
        cx, cy, *rest = pose
        cx += WIDTH * (0.08 * np.sin(2 * np.pi * 0.7 * t) + 0.02 * np.sin(2 * np.pi * 5.3 * t))
        cy += HEIGHT * 0.05 * np.cos(2 * np.pi * 1.1 * t)
        pose = (cx, cy, *rest)
    img = render(pose)
    if (width, height) != (WIDTH, HEIGHT):
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    return img


def clip(seconds: float, width: int = 640, height: int = 480, fps: int = 20, face: str = "photo") -> bytes:
    """A cached real WebM clip (VP8 + Opus, speech-like audio) of ``seconds`` seconds."""
    if face not in FACES:
        raise ValueError(f"face must be one of {FACES}, not {face!r}")
    key = hashlib.sha1(f"v2:{seconds}:{width}:{height}:{fps}:{face}".encode()).hexdigest()[:12]
    path = CACHE / f"clip_{width}x{height}_{fps}fps_{seconds:g}s_{face}_{key}.webm"
    if path.exists():
        return path.read_bytes()
    from inter1srv.synthmedia import default_script, encode_webm

    data = encode_webm(default_script(seconds), width=width, height=height, fps=fps,
                       frame=photo_frame if face == "photo" else None)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


def _blocks(webm: bytes) -> list[tuple[int, int, float]]:
    """(byte start, byte end, media time in s) of every SimpleBlock/BlockGroup, in stream order."""
    out: list[tuple[int, int, float]] = []
    end = len(webm)
    pos = 0
    scale_ns = 1_000_000
    while pos < end:
        eid, n = ebml.read_id(webm, pos, end)
        size, m = ebml.read_size(webm, pos + n, end)
        body = pos + n + m
        if eid != ebml.SEGMENT:
            pos = body + size
            continue
        seg_end = end if size == ebml.UNKNOWN_SIZE else body + size
        p = body
        cluster_tc = 0
        while p < seg_end:
            cid, n = ebml.read_id(webm, p, seg_end)
            csize, m = ebml.read_size(webm, p + n, seg_end)
            cbody = p + n + m
            if cid == ebml.INFO:
                q = cbody
                while q < cbody + csize:
                    iid, a = ebml.read_id(webm, q, seg_end)
                    isz, b = ebml.read_size(webm, q + a, seg_end)
                    if iid == ebml.TIMECODE_SCALE:
                        scale_ns = int.from_bytes(webm[q + a + b:q + a + b + isz], "big")
                    q += a + b + isz
            if cid != ebml.CLUSTER:
                p = cbody + csize
                continue
            # cluster payload: walk children until an element that cannot be a child
            q = cbody
            stop = seg_end if csize == ebml.UNKNOWN_SIZE else cbody + csize
            while q < stop:
                kid, a = ebml.read_id(webm, q, seg_end)
                if csize == ebml.UNKNOWN_SIZE and kid not in ebml.CLUSTER_CHILDREN | ebml.GLOBAL_IDS:
                    break
                ksz, b = ebml.read_size(webm, q + a, seg_end)
                kbody = q + a + b
                if kid == ebml.TIMECODE:
                    cluster_tc = int.from_bytes(webm[kbody:kbody + ksz], "big")
                elif kid in (ebml.SIMPLE_BLOCK, ebml.BLOCK_GROUP):
                    bb = kbody
                    if kid == ebml.BLOCK_GROUP:  # the Block child holds the timecode
                        while bb < kbody + ksz:
                            gid, ga = ebml.read_id(webm, bb, seg_end)
                            gsz, gb = ebml.read_size(webm, bb + ga, seg_end)
                            if gid == ebml.BLOCK:
                                bb += ga + gb
                                break
                            bb += ga + gb + gsz
                    tlen = ebml.vint_length(webm[bb])
                    rel = int.from_bytes(webm[bb + tlen:bb + tlen + 2], "big", signed=True)
                    out.append((q, kbody + ksz, (cluster_tc + rel) * scale_ns / 1e9))
                q = kbody + ksz
            p = q
        pos = seg_end
    return out


def recorder_chunks(webm: bytes, timeslice: float = 0.3) -> list[Chunk]:
    """Cut ``webm`` at block boundaries into chunks of about ``timeslice`` media seconds."""
    blocks = _blocks(webm)
    if not blocks:
        return [Chunk(webm, 0.0, 0.0)]
    origin = blocks[0][2]
    chunks: list[Chunk] = []
    cut = 0  # byte offset where the current chunk starts
    first_t: float | None = None
    newest = 0.0
    boundary = timeslice
    for start, _end, t in blocks:
        t -= origin
        if t >= boundary and first_t is not None:
            chunks.append(Chunk(webm[cut:start], first_t, newest))
            cut = start
            first_t = None
            while boundary <= t:
                boundary += timeslice
        if first_t is None:
            first_t = t
        newest = max(newest, t)
    chunks.append(Chunk(webm[cut:], first_t or 0.0, newest))
    return chunks
