"""A failure in one session's analysis ends that session only (sequencer logic, no processes)."""

import asyncio

from inter1srv.config import ServerConfig
from inter1srv.sequencer.service import Sequencer, SessionState, WorkerConn


class FakeChannel:
    def __init__(self):
        self.sent: list[dict] = []

    def send(self, message: dict) -> None:
        self.sent.append(message)


def _result(start: float, end: float) -> dict:
    n = int((end - start) / 0.5)
    times = [start + 0.5 * i for i in range(n)]
    zeros = [0.0] * n
    from workers.contract import CQI_DIMENSIONS, SIGNAL_TYPES

    return {"start": start, "end": end, "step": 0.5, "times": times,
            "signals": {s: zeros for s in SIGNAL_TYPES}, "engagement": zeros, "disengagement": zeros,
            "evidence": {"verbal": zeros, "paraverbal": zeros, "nonverbal": zeros}, "cues": [], "drivers": {},
            "cqi": {d: {"value": 50.0, "weight": 0.0} for d in CQI_DIMENSIONS}, "degraded": []}


def test_poisoned_session_fails_alone(tmp_path):
    async def run():
        seq = Sequencer(ServerConfig(data_dir=str(tmp_path)))
        frontend, worker_channel = FakeChannel(), FakeChannel()
        worker = WorkerConn("w", worker_channel, credit=8)
        seq.workers["w"] = worker
        for sid in ("good", "bad"):
            await seq._on_frontend(frontend, {"op": "open", "sid": sid, "ring": f"r-{sid}", "config": {}})
            await seq._on_frontend(frontend, {"op": "media", "sid": sid, "until": 8.0})

        def boom(*args, **kwargs):
            raise RuntimeError("analysis bug")

        seq.sessions["bad"].analysis.commit = boom
        for job in [m for m in worker_channel.sent if m["op"] == "job"]:
            seq._on_worker(worker, {"op": "result", "id": job["id"], "result": _result(job["start"], job["end"])})
        await asyncio.sleep(0.1)
        return seq, frontend

    seq, frontend = asyncio.run(run())
    failed = [m for m in frontend.sent if m["op"] == "failed"]
    assert [m["sid"] for m in failed] == ["bad"]
    good_events = [e for m in frontend.sent if m["op"] == "events" and m["sid"] == "good" for e in m["events"]]
    assert good_events, "the healthy session keeps getting its events"
    assert "bad" not in seq.sessions and "good" in seq.sessions
    assert isinstance(seq.sessions["good"], SessionState)
