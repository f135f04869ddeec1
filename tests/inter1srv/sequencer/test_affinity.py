"""A session's windows go to the worker that holds its caches (sans-I/O choice + the sequencer's dispatch)."""

import asyncio

from inter1srv.config import ServerConfig
from inter1srv.sequencer.affinity import WorkerLoad, choose_worker
from inter1srv.sequencer.service import Sequencer, WorkerConn


def test_new_session_is_pinned_to_the_worker_with_fewest_sessions():
    loads = {"a": WorkerLoad(free=8, sessions=3), "b": WorkerLoad(free=2, sessions=1)}
    assert choose_worker(None, loads) == ("b", "b")
    # equal counts: the freer one
    assert choose_worker(None, {"a": WorkerLoad(8, 1), "b": WorkerLoad(2, 1)}) == ("a", "a")
    # the least loaded is full: pinned there all the same, the window waits (or goes to an idle worker)
    assert choose_worker(None, {"a": WorkerLoad(0, 0), "b": WorkerLoad(1, 5)}) == (None, "a")
    assert choose_worker(None, {"a": WorkerLoad(0, 0), "b": WorkerLoad(8, 5, idle=True)}) == ("b", "a")
    assert choose_worker(None, {}) == (None, None)


def test_pinned_session_stays_waits_spills_to_idle_or_when_its_worker_stalls():
    assert choose_worker("a", {"a": WorkerLoad(1, 2), "b": WorkerLoad(8, 1, idle=True)}) == ("a", "a")
    assert choose_worker("a", {"a": WorkerLoad(0, 2), "b": WorkerLoad(7, 1)}) == (None, "a"), \
        "a busy worker does not take another session's window: wait for its own"
    assert choose_worker("a", {"a": WorkerLoad(0, 2), "b": WorkerLoad(8, 1, idle=True)}) == ("b", "a"), \
        "an idle worker does: spill, keep the pin"
    assert choose_worker("a", {"a": WorkerLoad(0, 2, stalled=True), "b": WorkerLoad(7, 1)}) == ("b", "a"), \
        "its worker finished nothing for a while: any worker with credit takes the window"
    assert choose_worker("a", {"a": WorkerLoad(0, 2, stalled=True), "b": WorkerLoad(0, 1)}) == (None, "a")


def test_pin_moves_when_its_worker_is_gone_or_much_busier():
    assert choose_worker("gone", {"a": WorkerLoad(2, 3), "b": WorkerLoad(2, 1)}) == ("b", "b")
    # a restarted worker with no sessions takes them over one at a time, until within one
    assert choose_worker("a", {"a": WorkerLoad(5, 4), "b": WorkerLoad(8, 0)}) == ("b", "b")
    assert choose_worker("a", {"a": WorkerLoad(5, 3), "b": WorkerLoad(8, 2)}) == ("a", "a")


class FakeChannel:
    def __init__(self):
        self.sent: list[dict] = []

    def send(self, message: dict) -> None:
        self.sent.append(message)


def _jobs(channel: FakeChannel) -> list[dict]:
    return [m for m in channel.sent if m["op"] == "job"]


def _pinned_to(seq: Sequencer, wid: str) -> set[str]:
    return {sid for sid, s in seq.sessions.items() if s.worker == wid}


def _sequencer(tmp_path, credit: int) -> tuple[Sequencer, dict[str, FakeChannel]]:
    """A sequencer with two fake workers, w1 and w2."""
    seq = Sequencer(ServerConfig(data_dir=str(tmp_path)))
    chans = {wid: FakeChannel() for wid in ("w1", "w2")}
    for wid, ch in chans.items():
        seq.workers[wid] = WorkerConn(wid, ch, credit=credit)
    return seq, chans


def test_sequencer_keeps_each_sessions_windows_on_one_worker(tmp_path):
    async def run():
        seq, chans = _sequencer(tmp_path, credit=16)
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
        (waiting,) = seq.queue
        assert waiting[0] == moved and seq.sessions[moved].schedule.windows[waiting[1]].start == 12.0
        # w2 goes idle: the waiting window spills to it, and the session stays pinned to w1
        for job in _jobs(chans["w2"]):
            w2.inflight.pop(job["id"], None)
        seq._dispatch()
        assert _jobs(chans["w2"])[-1]["sid"] == moved and not seq.queue
        assert seq.sessions[moved].worker == "w1"

        # w1 leaves: its sessions are pinned anew to w2
        seq.workers.pop("w1")
        await seq._on_frontend(frontend, {"op": "media", "sid": moved, "until": 23.0})
        assert seq.sessions[moved].worker == "w2" and moved in _pinned_to(seq, "w2")

        # a session that ends is unpinned, and the workers (w2 is the one left) are told to forget it
        await seq._on_frontend(frontend, {"op": "abort", "sid": moved, "reason": "client_disconnect"})
        assert moved not in _pinned_to(seq, "w2")
        assert {"op": "forget", "ring": f"r-{moved}", "sid": moved} in chans["w2"].sent

    asyncio.run(run())


def test_window_of_a_stalled_worker_spills_to_a_busy_worker(tmp_path):
    async def run():
        seq, chans = _sequencer(tmp_path, credit=4)
        frontend = FakeChannel()
        for sid in ("s1", "s2"):
            await seq._on_frontend(frontend, {"op": "open", "sid": sid, "ring": f"r-{sid}", "config": {}})
            await seq._on_frontend(frontend, {"op": "media", "sid": sid, "until": 11.0})  # 4 windows each
        pinned = seq.sessions["s1"].worker
        other = "w2" if pinned == "w1" else "w1"
        assert seq.sessions["s2"].worker == other and not seq.queue
        await seq._on_frontend(frontend, {"op": "media", "sid": "s1", "until": 14.0})
        assert len(seq.queue) == 1, "its worker is full and the other is busy: the window waits"
        seq.workers[other].credit = 5  # one slot frees on the busy worker
        seq._dispatch()
        assert len(seq.queue) == 1, "a busy worker does not take it while its own worker makes progress"
        seq.workers[pinned].progress_at -= 2 * seq.cfg.live_window_deadline_seconds + 1  # finished nothing since
        seq._dispatch()
        assert not seq.queue and _jobs(chans[other])[-1]["sid"] == "s1"
        assert seq.sessions["s1"].worker == pinned

    asyncio.run(run())


def test_worker_of_another_result_contract_is_refused(tmp_path):
    from workers.contract import RESULT_CONTRACT

    async def run():
        seq = Sequencer(ServerConfig(data_dir=str(tmp_path)))
        ch = FakeChannel()
        await seq._serve_worker(ch, {"role": "worker", "wid": "w0", "pid": 1, "contract": RESULT_CONTRACT - 1})
        return seq, ch

    seq, ch = asyncio.run(run())
    assert not seq.workers
    (refused,) = ch.sent
    assert refused["op"] == "refused" and "restart the whole server" in refused["reason"]


def test_a_worker_idle_for_long_is_not_stalled_when_it_gets_work(tmp_path):
    import time

    async def run():
        seq = Sequencer(ServerConfig(data_dir=str(tmp_path)))
        worker = WorkerConn("w1", FakeChannel(), credit=8)
        worker.progress_at -= 600.0  # joined (or last finished a window) ten minutes ago
        seq.workers["w1"] = worker
        frontend = FakeChannel()
        await seq._on_frontend(frontend, {"op": "open", "sid": "s", "ring": "r-s", "config": {}})
        await seq._on_frontend(frontend, {"op": "media", "sid": "s", "until": 8.0})
        assert worker.inflight and not worker.stalled(time.monotonic(), 4.0)
        worker.progress_at -= 5.0
        assert worker.stalled(time.monotonic(), 4.0)

    asyncio.run(run())
