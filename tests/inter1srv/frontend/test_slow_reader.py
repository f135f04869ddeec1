"""A client that stops reading events is cut off after ``slow_reader_seconds`` (no sockets needed)."""

import asyncio
from types import SimpleNamespace

from inter1srv.config import ServerConfig
from inter1srv.frontend.metrics import Metrics
from inter1srv.frontend.session import Session


class StuckSocket:
    """A WebSocket whose peer never reads: every send waits forever."""

    def __init__(self):
        self.closed_with = None
        self.aborted = False
        self.transport = SimpleNamespace(abort=self._abort)

    async def send(self, _message):
        await asyncio.Event().wait()

    async def close(self, code, reason):
        self.closed_with = (code, reason)
        await asyncio.Event().wait()  # the close frame cannot be flushed either

    def _abort(self):
        self.aborted = True


def test_slow_reader_is_cut_off_with_1008_and_analysis_aborted():
    sent_to_sequencer = []
    frontend = SimpleNamespace(cfg=ServerConfig(slow_reader_seconds=0.3), metrics=Metrics(),
                               to_sequencer=lambda m: sent_to_sequencer.append(m) or True)

    async def run():
        ws = StuckSocket()
        session = Session(frontend, ws)
        sender = asyncio.create_task(session._sender())
        for i in range(50):
            session._emit("engagement.updated", {"state": "engaged", "start": float(i)})
        await asyncio.wait_for(sender, timeout=5)
        return session, ws

    session, ws = asyncio.run(run())
    assert ws.closed_with == (1008, "client is not reading events")
    assert ws.aborted
    assert session.state == "failed"
    assert [m["op"] for m in sent_to_sequencer] == ["abort"]
    assert frontend.metrics.counters["slow_readers_total"] == 1
