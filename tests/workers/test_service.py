"""The worker process's control link: an ended session's caches are dropped, its queued windows skipped."""

from __future__ import annotations

import socket
import threading

import pytest

from inter1srv.config import ServerConfig
from inter1srv.ipc import BlockingChannel
from workers.baseline import BaselineModel
from workers.service import Worker


class FakeChannel:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, message: dict) -> None:
        self.sent.append(message)


def test_forget_from_the_sequencer_drops_the_sessions_caches(media):
    model = BaselineModel("cpu", faces="haar")
    ended, kept = media.window(0.0, 8.0), media.window(0.0, 8.0)
    ended.session_id, kept.session_id = "ended", "kept"
    model.analyze([ended, kept])
    for cache in (model.gray_cache, model.face.cache, model.asr_cache):
        assert "ended" in cache and "kept" in cache

    worker = Worker(ServerConfig(), "w-test")
    sequencer_end, worker_end = socket.socketpair()
    to_worker, from_sequencer = BlockingChannel(sequencer_end), BlockingChannel(worker_end)
    receiver = threading.Thread(target=worker._receive, args=(from_sequencer,), daemon=True)
    receiver.start()
    to_worker.send({"op": "forget", "ring": "i1s.test.never-attached", "sid": "ended"})
    sequencer_end.shutdown(socket.SHUT_WR)  # the link closes: the receiver stops after what was sent
    receiver.join(5.0)
    assert worker.link_lost.is_set()
    assert worker.ended.qsize() == 1, "the receiving thread only queues the id; the model's thread drops"
    # a window of the ended session that was queued before the forget is answered, not analysed
    channel = FakeChannel()
    job = {"op": "job", "id": "j1", "sid": "ended", "ring": "i1s.test.never-attached", "start": 0.0, "end": 8.0}
    worker._process(model, channel, [job])
    assert channel.sent == [{"op": "failed", "id": "j1", "reason": "session ended", "retryable": False}]
    worker._forget_ended(model)  # what the worker's loop does before gathering each batch
    for cache in (model.gray_cache, model.face.cache, model.asr_cache):
        assert "ended" not in cache and "kept" in cache
    sequencer_end.close()
    worker_end.close()


def test_a_window_of_a_live_session_is_still_read():
    worker = Worker(ServerConfig(), "w-test")
    worker.rings.forget("i1s.test.other-ring")
    channel = FakeChannel()
    job = {"op": "job", "id": "j2", "sid": "live", "ring": "i1s.test.never-attached", "start": 0.0, "end": 8.0}
    worker._process(BaselineModel("cpu", faces=False, asr="none"), channel, [job])
    (reply,) = channel.sent
    assert reply["id"] == "j2" and reply["reason"].startswith("ring:"), "read (and failed: no such ring), not skipped"


def test_a_forgotten_ring_is_not_attached_again():
    from shm.media_ring import MediaRing
    from shm.segment import make_server_prefix, segment_name
    from workers.service import RingCache, RingForgotten

    name = segment_name(make_server_prefix(), "ringcache")
    ring = MediaRing.create(name, video_slots=2, max_width=4, max_height=4, audio_seconds=0.1)  # a real segment
    try:
        cache = RingCache(remember=2)
        assert cache.get(ring.name) is cache.get(ring.name)
        cache.forget(ring.name)
        with pytest.raises(RingForgotten):
            cache.get(ring.name)
        cache.forget("a")
        cache.forget("b")  # only the newest names are remembered: the oldest may attach again
        assert cache.get(ring.name).name == ring.name
        cache.close_all()
        assert cache.get(ring.name).name == ring.name, "closing all is no forget: the ring attaches again"
        cache.close_all()
    finally:
        ring.close()
        ring.unlink()


def test_sticky_cuda_errors_are_told_from_ordinary_failures():
    import torch

    from workers.service import is_sticky_cuda_error

    assert is_sticky_cuda_error(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert is_sticky_cuda_error(RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"))
    if hasattr(torch, "AcceleratorError"):
        assert is_sticky_cuda_error(torch.AcceleratorError("CUDA error: unspecified launch failure"))
    assert not is_sticky_cuda_error(RuntimeError("shape '[2, 3]' is invalid for input of size 5"))
    assert not is_sticky_cuda_error(ValueError("CUDA error in a message that is no CUDA failure"))
