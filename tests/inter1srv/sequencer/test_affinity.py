"""A session's windows go to the worker that holds its caches (sans-I/O choice + the sequencer's dispatch)."""

import asyncio

from inter1srv.config import ServerConfig
from inter1srv.sequencer.affinity import WorkerLoad, choose_worker
from inter1srv.sequencer.service import Sequencer, WorkerConn


def test_new_session_goes_to_the_worker_with_fewest_sessions():
    loads = {"a": WorkerLoad(free=8, sessions=3), "b": WorkerLoad(free=2, sessions=1)}
    assert choose_worker(None, loads) == ("b", True)
    # equal counts: the freer one; a worker without credit is never chosen
    assert choose_worker(None, {"a": WorkerLoad(8, 1), "b": WorkerLoad(2, 1)}) == ("a", True)
    assert choose_worker(None, {"a": WorkerLoad(0, 0), "b": WorkerLoad(1, 5)}) == ("b", True)
    assert choose_worker(None, {"a": WorkerLoad(0, 0)}) == (None, False)
    assert choose_worker(None, {}) == (None, False)


def test_pinned_session_stays_spills_only_to_an_idle_worker_and_is_repinned_when_its_worker_is_gone():
    assert choose_worker("a", {"a": WorkerLoad(1, 9), "b": WorkerLoad(8, 0, idle=True)}) == ("a", False)
    assert choose_worker("a", {"a": WorkerLoad(0, 9), "b": WorkerLoad(7, 0)}) == (None, False), \
        "a busy worker does not take another session's window: wait for its own"
    assert choose_worker("a", {"a": WorkerLoad(0, 9), "b": WorkerLoad(8, 0, idle=True)}) == ("b", False), \
        "an idle worker does: spill, keep the pin"
    assert choose_worker("a", {"a": WorkerLoad(0, 9)}) == (None, False), "wait for its worker"
    assert choose_worker("gone", {"a": WorkerLoad(2, 3), "b": WorkerLoad(2, 1)}) == ("b", True)


class FakeChannel:
    def __init__(self):
        self.sent: list[dict] = []

    def send(self, message: dict) -> None:
        self.sent.append(message)


def _jobs(channel: FakeChannel) -> list[dict]:
    return [m for m in channel.sent if m["op"] == "job"]


def test_sequencer_keeps_each_sessions_windows_on_one_worker(tmp_path):
    async def run():
        seq = Sequencer(ServerConfig(data_dir=str(tmp_path)))
        chans = {wid: FakeChannel() for wid in ("w1", "w2")}
        for wid, ch in chans.items():
            seq.workers[wid] = WorkerConn(wid, ch, credit=16)
        frontend = FakeChannel()
        sids = [f"s{i}" for i in range(4)]
        for sid in sids:
            await seq._on_frontend(frontend, {"op": "open", "sid": sid, "ring": f"r-{sid}", "config": {}})
        for until in (8.0, 11.0, 14.0, 17.0):  # every session: one window per hop
            for sid in sids:
                await seq._on_frontend(frontend, {"op": "media", "sid": sid, "until": until})
        by_worker = {wid: {j["sid"] for j in _jobs(ch)} for wid, ch in chans.items()}
        assert by_worker["w1"] | by_worker["w2"] == set(sids)
        assert not by_worker["w1"] & by_worker["w2"], "no session's windows are split over workers"
        assert len(by_worker["w1"]) == len(by_worker["w2"]) == 2, "sessions are spread evenly"

        # w1 has no credit left: its session's window waits while w2 is busy, and other sessions' windows
        # behind it are not held up
        w1, w2 = seq.workers["w1"], seq.workers["w2"]
        w1.credit = len(w1.inflight)
        moved = sorted(by_worker["w1"])[0]
        other = sorted(by_worker["w2"])[0]
        sent = len(_jobs(chans["w2"]))
        await seq._on_frontend(frontend, {"op": "media", "sid": moved, "until": 20.0})
        await seq._on_frontend(frontend, {"op": "media", "sid": other, "until": 20.0})
        assert [j["sid"] for j in _jobs(chans["w2"])[sent:]] == [other]
        assert list(seq.queue) == [(moved, seq.queue[0][1])]
        # w2 goes idle: the waiting window spills to it, and the session stays pinned to w1
        for job in _jobs(chans["w2"]):
            w2.inflight.pop(job["id"], None)
        seq._dispatch()
        assert _jobs(chans["w2"])[-1]["sid"] == moved and not seq.queue
        assert seq.sessions[moved].worker == "w1"

        # w1 leaves: its sessions are pinned anew to w2
        seq.workers.pop("w1")
        await seq._on_frontend(frontend, {"op": "media", "sid": moved, "until": 23.0})
        assert seq.sessions[moved].worker == "w2" and moved in seq.workers["w2"].sessions

    asyncio.run(run())
