"""The worker process's control link: an ended session's caches are dropped between batches."""

from __future__ import annotations

import socket
import threading

from inter1srv.config import ServerConfig
from inter1srv.ipc import BlockingChannel
from workers.baseline import BaselineModel
from workers.service import Worker


def test_forget_from_the_sequencer_drops_the_sessions_caches(media):
    model = BaselineModel("cpu", faces=False, asr="none")
    ended, kept = media.window(0.0, 8.0), media.window(0.0, 8.0)
    ended.session_id, kept.session_id = "ended", "kept"
    model.analyze([ended, kept])
    assert "ended" in model.gray_cache and "kept" in model.gray_cache

    worker = Worker(ServerConfig(), "w-test")
    sequencer_end, worker_end = socket.socketpair()
    to_worker, from_sequencer = BlockingChannel(sequencer_end), BlockingChannel(worker_end)
    receiver = threading.Thread(target=worker._receive, args=(from_sequencer,), daemon=True)
    receiver.start()
    to_worker.send({"op": "forget", "ring": "i1s.test.never-attached", "sid": "ended"})
    sequencer_end.shutdown(socket.SHUT_WR)  # the link closes: the receiver stops after what was sent
    receiver.join(5.0)
    assert worker.link_lost.is_set()
    assert "ended" in model.gray_cache, "the receiving thread never touches the model"
    worker._forget_ended(model)
    assert "ended" not in model.gray_cache and "kept" in model.gray_cache
    assert "ended" not in model.asr_cache
    sequencer_end.close()
    worker_end.close()
