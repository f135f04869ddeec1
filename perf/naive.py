"""Naive reference: the same analysis in ONE process, no batching, no shared memory.

    python -m perf.naive --port 8090

What a first implementation would do: a websockets server; per session, the WebM bytes are
demuxed as they arrive (same :class:`MediaDecoder`), and when a window closes (media up to its
end has arrived) the session decodes what it has up to the window end, keeps the decoded
frames and audio in ordinary numpy buffers, and runs the same baseline model on that one
window (batch 1) followed by the same sans-I/O analysis (:class:`SessionAnalysis`: signal
and engagement state machines, CQI).  Decode + model run in a thread pool of ``cpu_count``
threads (one session's work is sequential; sessions run side by side; Torch one thread per
call), so the event loop keeps reading sockets.  No shedding: when it falls behind, lag grows.
Any Bearer key is accepted.  Billing is the union of analysed windows, reported in
``session.ended`` (no ledger).  Speaks the subset of the protocol the load generator uses.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import threading
import uuid

import numpy as np
import orjson
import websockets
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from inter1srv.ingest.decode import MediaDecoder
from inter1srv.protocol.envelope import build_envelope, encode
from inter1srv.sequencer.analysis import SessionAnalysis
from inter1srv.sequencer.ranges import as_wire, union
from workers.contract import AUDIO_SAMPLE_RATE, WindowInput

WINDOW, HOP = 8.0, 3.0
KEEP_S = 12.0  # decoded media kept behind the newest window start


MODEL_LOCK = threading.Lock()


class NaiveSession:
    def __init__(self, model, pool: concurrent.futures.Executor):
        self.model, self.pool = model, pool
        self.decoder = MediaDecoder(fps=10, width=320, max_height=240)
        self.analysis = SessionAnalysis()
        self.frames: list[tuple[float, np.ndarray]] = []
        self.audio = np.zeros(0, np.float32)
        self.audio_start = 0.0
        self.next_index = 0
        self.frontier = 0.0
        self.delivered: list[tuple[float, float]] = []
        self.include: list[str] = []
        self.cid = str(uuid.uuid4())
        self.lock = asyncio.Lock()

    # runs in the pool: decode up to ``until`` and analyse window [start, end)
    def _decode_to(self, until: float | None) -> None:
        out = self.decoder.decode(until=until) if until is not None else self.decoder.finish()
        self.frames.extend(out.frames)
        if len(out.audio):
            self.audio = np.concatenate([self.audio, out.audio])

    def _window(self, start: float, end: float, flush: bool) -> list:
        self._decode_to(None if flush else end)
        times = np.array([t for t, _ in self.frames])
        sel = [i for i, t in enumerate(times) if start <= t < end]
        frames = np.stack([self.frames[i][1] for i in sel]) if sel else np.zeros((0, 240, 320, 3), np.uint8)
        a0 = int(round((start - self.audio_start) * AUDIO_SAMPLE_RATE))
        a1 = int(round((end - self.audio_start) * AUDIO_SAMPLE_RATE))
        audio = self.audio[max(0, a0):max(0, a1)]
        # the session's own id: the model's per-session caches must never mix sessions
        win = WindowInput(f"{self.cid}:{start}", self.cid, start, end, frames, times[sel] if sel else np.zeros(0), audio,
                          self.audio_start + max(0, a0) / AUDIO_SAMPLE_RATE)
        with MODEL_LOCK:  # one model for every session; its OpenCV cascade is not thread-safe
            result = self.model.analyze([win])[0]
        # forget media no later window needs
        keep_from = start + HOP - 1.0
        self.frames = [(t, f) for t, f in self.frames if t >= keep_from]
        drop = int(max(0.0, keep_from - self.audio_start) * AUDIO_SAMPLE_RATE)
        if drop > 0:
            self.audio = self.audio[drop:]
            self.audio_start += drop / AUDIO_SAMPLE_RATE
        return result

    async def analyse(self, ws, start: float, end: float, flush: bool = False) -> None:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self.pool, self._window, start, end, flush)
        a = max(self.frontier, start)
        for ev in self.analysis.commit(result, a, end, feedback_dimensions=None):
            data = ev.data
            if ev.type == "conversation_quality.updated":
                data = {k: v for k, v in data.items() if (k == "timeline" and "conversation_quality" in self.include)
                        or (k == "overall" and "conversation_quality" in self.include)}
                if not data:
                    continue
            await self.send(ws, ev.type, data, ev.t)
        self.frontier = end
        self.delivered.append((start, end))

    async def send(self, ws, etype: str, data: dict, t: float) -> None:
        await ws.send(encode(build_envelope(etype, data, t=round(t, 3), correlation_id=self.cid)))


async def handle(ws, model, pool) -> None:
    s = NaiveSession(model, pool)
    await s.send(ws, "session.ready", {"window_seconds": WINDOW, "hop_seconds": HOP, "session_id": s.cid}, 0.0)
    tasks: asyncio.Queue = asyncio.Queue()

    async def analyser() -> None:  # one session's windows, in order
        while True:
            item = await tasks.get()
            if item is None:
                return
            await s.analyse(ws, *item)

    runner = asyncio.create_task(analyser())
    scheduled_end = 0.0
    try:
        async for message in ws:
            if isinstance(message, str):
                msg = orjson.loads(message)
                if msg.get("type") == "session.close":
                    break
                s.include = list(msg.get("include") or [])
                await s.send(ws, "session.updated", {"include": s.include}, 0.0)
                continue
            s.decoder.feed(message)  # demux only (cheap); decoding waits for the window
            avail = s.decoder.queued_until or 0.0
            while s.next_index * HOP + WINDOW <= avail:
                start = s.next_index * HOP
                tasks.put_nowait((start, start + WINDOW))
                scheduled_end = start + WINDOW
                s.next_index += 1
        await tasks.put(None)
        await runner
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(pool, s._decode_to, None)
        media_end = max((t for t, _ in s.frames), default=0.0) + 0.1
        media_end = max(media_end, s.audio_start + len(s.audio) / AUDIO_SAMPLE_RATE)
        if media_end > scheduled_end + 1e-3:
            start = max(0.0, media_end - WINDOW)
            await s.analyse(ws, start, media_end, flush=False)
        for ev in s.analysis.finish(s.frontier):
            await s.send(ws, ev.type, ev.data, ev.t)
        billed = sum(b - a for a, b in union(s.delivered))
        await s.send(ws, "session.ended", {"reason": "client_shutdown", "billed_seconds": round(billed, 3),
                                           "analyzed_ranges": as_wire(union(s.delivered)), "dropped_ranges": []},
                     media_end)
        await ws.close(1000)
    except websockets.ConnectionClosed:
        pass
    finally:
        runner.cancel()
        s.decoder.close()


async def main_async(port: int, device: str) -> None:
    import torch

    from workers.baseline import BaselineModel

    torch.set_num_threads(1)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = BaselineModel(device=device)
    pool = concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="naive")

    def process_request(connection, request):
        if request.path.startswith("/readyz") or request.path.startswith("/healthz"):
            return Response(200, "OK", Headers([("Content-Length", "3")]), b"ok\n")
        return None

    async with serve(lambda ws: handle(ws, model, pool), "127.0.0.1", port, process_request=process_request,
                     compression=None, max_size=None):
        await asyncio.Future()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("INTER1SRV_PORT", "8090")))
    ap.add_argument("--device", default=os.environ.get("INTER1SRV_DEVICE", "auto"), help="auto, cpu or cuda")
    args = ap.parse_args()
    asyncio.run(main_async(args.port, args.device))


if __name__ == "__main__":
    main()
