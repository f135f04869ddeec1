"""The DALI media path (``INTER1SRV_MEDIA=dali``) in real worker processes: same session, same signals."""

from __future__ import annotations

import pytest
from harness import detected_signals, serve_side_by_side

pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (test extra)")

CONFIG = {"type": "session.configure", "include": ["conversation_quality", "feedback", "engagement"]}


def test_dali_workers_serve_the_same_session_as_torch_workers(fresh_server, clip):
    # CUDA graphs asked for too: on a CPU worker the switch must change nothing
    on_dali = fresh_server(media="dali", cuda_graphs="1")
    on_torch = fresh_server()
    dali_record, torch_record = serve_side_by_side([on_dali, on_torch], clip, 30.0, CONFIG)
    log = on_dali.log_tail(400)
    assert '"msg":"worker ready"' in log and '"media":"dali"' in log, log
    dali, torch = ([s[:3] for s in detected_signals(r)] for r in (dali_record, torch_record))
    assert dali, "the clip's lively parts must raise at least one signal"
    assert dali == torch
