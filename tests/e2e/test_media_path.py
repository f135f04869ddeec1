"""The DALI media path (``INTER1SRV_MEDIA=dali``) in real worker processes: same session, same signals."""

from __future__ import annotations

import asyncio

import pytest
from harness import assert_well_formed, chunks_of, stream_session

pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (test extra)")

CONFIG = {"type": "session.configure", "include": ["conversation_quality", "feedback", "engagement"]}


def _signals(record) -> list[tuple]:
    return [(e["data"]["signal_type"], e["data"]["start"], e["data"]["probability"])
            for e in record.of("signal.detected")]


def test_dali_workers_serve_the_same_session_as_torch_workers(fresh_server, clip):
    # CUDA graphs asked for too: on a CPU worker the switch must change nothing
    on_dali = fresh_server(media="dali", cuda_graphs="1")
    on_torch = fresh_server()

    async def both():
        return await asyncio.gather(*(stream_session(srv.url, srv.key, chunks_of(clip, 64 * 1024), config=CONFIG)
                                      for srv in (on_dali, on_torch)))

    dali_record, torch_record = asyncio.run(both())
    for record, srv in ((dali_record, on_dali), (torch_record, on_torch)):
        assert record.close_code == 1000, (record.events[-3:], srv.log_tail())
        assert_well_formed(record)
        ended = record.ended["data"]
        assert ended["dropped_ranges"] == [] and abs(ended["billed_seconds"] - 30.0) < 0.2, ended
    log = on_dali.log_tail(400)
    assert '"msg":"worker ready"' in log and '"media":"dali"' in log, log
    assert '"level":"error"' not in log, log
    assert _signals(dali_record), "the clip's lively parts must raise at least one signal"
    assert _signals(dali_record) == _signals(torch_record)
