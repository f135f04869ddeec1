"""A worker process: pulls windows from the sequencer, reads media from the rings, runs the model.

Stateless across batches: a worker can die at any moment; the sequencer
retries or drops what it had in hand.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections import OrderedDict

import numpy as np

from inter1srv import logs, sdnotify
from inter1srv.config import ServerConfig
from inter1srv.ipc import BlockingChannel, ChannelClosed
from shm.media_ring import Lapped, MediaRing

from .batching import next_batch
from .contract import AUDIO_SAMPLE_RATE, RESULT_CONTRACT, WindowInput
from .device_stats import gpu_stats
from .pixels import to_rgb

log = logging.getLogger("inter1srv.worker")
STATS_INTERVAL_S = 5.0


def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def is_sticky_cuda_error(exc: BaseException) -> bool:
    """A CUDA error after which this process should not run the model again: those that poison the
    context (illegal address, launch failure, ECC) and, to be safe, any other CUDA / cuBLAS / cuDNN
    failure (a restart costs a few seconds; a poisoned worker would fail every batch)."""
    import torch

    accelerator_error = getattr(torch, "AcceleratorError", None)
    if accelerator_error is not None and isinstance(exc, accelerator_error):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("CUDA error" in text or "CUBLAS_STATUS" in text
                                              or "CUDNN_STATUS" in text)


def load_model(device: str):
    from .baseline import BaselineModel

    return BaselineModel(device=device)


class RingForgotten(LookupError):
    """The sequencer has said this ring's session ended: it is not attached again."""


class RingCache:
    """Attached rings by name; the sequencer says when a session's ring can be forgotten."""

    def __init__(self, remember: int = 4096) -> None:
        self._rings: dict[str, MediaRing] = {}
        self._forgotten: OrderedDict[str, None] = OrderedDict()  # bounded: ring names are never reused
        self._remember = remember
        self._lock = threading.Lock()

    def get(self, name: str) -> MediaRing:
        with self._lock:
            if name in self._forgotten:  # a job queued before the forget: re-attaching would keep it mapped
                raise RingForgotten(name)
            ring = self._rings.get(name)
            if ring is None:
                ring = self._rings[name] = MediaRing.attach(name)
            return ring

    def forget(self, name: str) -> None:
        with self._lock:
            ring = self._rings.pop(name, None)
            self._forgotten[name] = None
            while len(self._forgotten) > self._remember:
                self._forgotten.popitem(last=False)
        if ring is not None:
            ring.close()

    def close_all(self) -> None:
        """Detach every ring (the sequencer restarted: no forget will come for its sessions)."""
        with self._lock:
            rings, self._rings = list(self._rings.values()), {}
        for ring in rings:
            ring.close()


def read_window(ring: MediaRing, job: dict) -> WindowInput:
    start, end = float(job["start"]), float(job["end"])
    frames, times = ring.read_frames(start, end)
    frames = to_rgb(frames, ring.pixel_format)  # yuv420p rings: half the shared memory, converted here
    k0, k1 = int(round(start * AUDIO_SAMPLE_RATE)), int(round(end * AUDIO_SAMPLE_RATE))
    audio = ring.read_audio(k0, k1)
    return WindowInput(
        job_id=job["id"],
        session_id=job["sid"],
        start=start,
        end=end,
        frames=frames,
        frame_times=times,
        audio=np.asarray(audio, dtype=np.float32),
        audio_start=k0 / AUDIO_SAMPLE_RATE,
    )


class Worker:
    def __init__(self, cfg: ServerConfig, wid: str):
        self.cfg, self.wid = cfg, wid
        self.jobs: queue.Queue[dict] = queue.Queue()
        self.rings = RingCache()
        self.stop = threading.Event()
        self.link_lost = threading.Event()
        self.ended: queue.Queue[str] = queue.Queue()  # sessions the sequencer forgot (from the receiver thread)

    def run(self) -> None:
        import cv2
        import torch

        # one thread per worker, CPU or CUDA: OpenMP's spinning threads cost 5-10x the model itself on
        # the CPU (py-spy, perf/REPORT.md), and a GPU host runs several workers per GPU for the CPU-side
        # work (speech, audio features, OpenCV); scale with --workers instead
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        cv2.setNumThreads(1)
        device = pick_device(self.cfg.device)
        model = load_model(device)
        self._warm_up(model)
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())  # finish the batch in hand, then exit
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        self.device, self.model_name = device, model.name
        channel = self._link()
        sdnotify.notify("READY=1")
        logs.log(log, logging.INFO, "worker ready", worker=self.wid, device=device, model=model.name,
                 media=getattr(getattr(model, "to_gray", None), "backend", None))
        watchdog = sdnotify.watchdog_interval()
        last_ping = last_stats = 0.0
        while not self.stop.is_set():
            if self.link_lost.is_set():
                channel = self._relink(channel, model)
                if channel is None:
                    break
            self._forget_ended(model)  # also when idle: an ended session's memory goes now
            batch = next_batch(self.jobs, self.cfg.batch_max, self.cfg.batch_wait_ms / 1000)
            if batch:
                try:
                    self._process(model, channel, batch)
                except ChannelClosed:
                    self.link_lost.set()
            if watchdog is not None and time.monotonic() - last_ping > watchdog:
                sdnotify.notify("WATCHDOG=1")
                last_ping = time.monotonic()
            if time.monotonic() - last_stats > STATS_INTERVAL_S:
                last_stats = time.monotonic()
                stats = gpu_stats(self.device)
                if stats is not None:
                    try:
                        channel.send({"op": "stats", "stats": stats})
                    except ChannelClosed:
                        self.link_lost.set()
        sdnotify.notify("STOPPING=1")
        if channel is not None:
            channel.close()

    def _link(self) -> BlockingChannel:
        channel = self._connect()
        channel.send({"op": "hello", "role": "worker", "wid": self.wid, "pid": os.getpid(), "device": self.device,
                      "batch_max": self.cfg.batch_max, "contract": RESULT_CONTRACT})
        self.link_lost.clear()
        threading.Thread(target=self._receive, args=(channel,), daemon=True).start()
        return channel

    def _relink(self, old: BlockingChannel, model) -> BlockingChannel | None:
        """The sequencer restarted: its jobs and sessions are gone with it; keep the warm model and reconnect."""
        old.close()
        while not self.jobs.empty():
            self.jobs.get_nowait()
        if hasattr(model, "clear_caches"):
            model.clear_caches()  # no forget will come for the old sessions
        self.rings.close_all()
        logs.log(log, logging.WARNING, "sequencer link lost; reconnecting", worker=self.wid)
        try:
            return self._link()
        except OSError:
            logs.log(log, logging.ERROR, "sequencer did not come back", worker=self.wid)
            return None

    def _connect(self, patience_s: float = 60.0) -> BlockingChannel:
        """The sequencer may start after us (separate systemd units): retry for a while."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                return BlockingChannel.connect(self.cfg.control_socket)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _warm_up(self, model) -> None:
        frames = np.zeros((4, 240, 320, 3), np.uint8)
        win = WindowInput("warmup", "warmup", 0.0, 1.0, frames, np.arange(4) / 4.0,
                          np.zeros(AUDIO_SAMPLE_RATE, np.float32), 0.0)
        model.analyze([win])
        if hasattr(model, "forget"):
            model.forget("warmup")

    def _forget_ended(self, model) -> None:
        """Drop the per-session caches of ended sessions (on the model's thread: the model is not
        thread-safe). Their windows still queued are not analysed: their rings are forgotten."""
        forget = getattr(model, "forget", None)
        while True:
            try:
                sid = self.ended.get_nowait()
            except queue.Empty:
                return
            if forget is not None:
                forget(sid)

    def _receive(self, channel: BlockingChannel) -> None:
        try:
            while True:
                msg = channel.recv()
                if msg.get("op") == "job":
                    self.jobs.put(msg)
                elif msg.get("op") == "forget":  # at once: a job of this ring read after now is refused
                    self.rings.forget(msg["ring"])
                    if msg.get("sid"):
                        self.ended.put(msg["sid"])
                elif msg.get("op") == "refused":  # e.g. another result contract: retrying cannot help
                    logs.log(log, logging.ERROR, "refused by the sequencer", worker=self.wid, reason=msg.get("reason"))
                    os._exit(2)
        except (ChannelClosed, OSError):
            self.link_lost.set()

    def _process(self, model, channel: BlockingChannel, batch: list[dict]) -> None:
        inputs: list[WindowInput] = []
        jobs: list[dict] = []
        for job in batch:
            try:
                inputs.append(read_window(self.rings.get(job["ring"]), job))
                jobs.append(job)
            except RingForgotten:  # queued before its session ended: nobody waits for it
                channel.send({"op": "failed", "id": job["id"], "reason": "session ended", "retryable": False})
            except Lapped:
                channel.send({"op": "failed", "id": job["id"], "reason": "lapped", "retryable": False})
            except (FileNotFoundError, ValueError) as exc:
                channel.send({"op": "failed", "id": job["id"], "reason": f"ring: {exc}", "retryable": False})
        if not inputs:
            return
        started = time.perf_counter()
        try:
            results = model.analyze(inputs)
        except Exception as exc:  # noqa: BLE001 - one bad batch must not kill the worker
            log.exception("model failed")
            if is_sticky_cuda_error(exc):  # every later batch of this process would fail the same way
                # exit without answering: the sequencer re-queues the batch for another worker when the
                # link drops (a "failed" now would send the retry straight back to this process), and
                # the supervisor (or systemd) restarts this one with a fresh CUDA context
                logs.log(log, logging.ERROR, "CUDA error: exiting for a fresh CUDA context", worker=self.wid)
                os._exit(3)
            for job in jobs:
                channel.send({"op": "failed", "id": job["id"], "reason": f"model: {exc}", "retryable": True})
            return
        elapsed = time.perf_counter() - started
        for job, result in zip(jobs, results, strict=True):
            channel.send({"op": "result", "id": job["id"], "result": result, "proc_s": elapsed, "batch": len(jobs)})


def main(cfg: ServerConfig, wid: str | None = None) -> None:
    logs.setup("worker")
    Worker(cfg, wid or f"w{os.getpid()}").run()
