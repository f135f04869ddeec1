"""Seeded fuzzing of the ingest path in CI (perf/fuzz_ingest.py runs 1e5 cases)."""

import random
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inter1srv.ingest.fuzzing import run_case
from inter1srv.protocol.client_messages import CloseRequest, Configure, ProtocolError, parse_text_frame
from inter1srv.synthmedia import default_script, encode_webm

CLIP = encode_webm(default_script(3.0), width=160, height=120, fps=10)


def _bounded(fn, seconds: float):
    """Run ``fn`` in a thread; a hang is a failure."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below on the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "ingest hung on hostile input"
    if "error" in box:
        raise box["error"]
    return box["value"]


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), chunk=st.sampled_from([1, 7, 512, 4096, 1 << 20]))
def test_hostile_webm_only_ever_raises_coded_ingest_errors(seed, chunk):
    outcome = _bounded(lambda: run_case(CLIP, random.Random(seed), chunk=max(chunk, 64)), 20.0)
    assert outcome.error_code in (None, "ih5001", "ih5004")


def test_every_mutation_kind_is_exercised_and_hostile_input_is_rejected():
    outcomes = [run_case(CLIP, random.Random(seed), decode=False) for seed in range(200)]
    kinds = {o.mutation for o in outcomes}
    assert kinds == {"flip", "cut", "insert", "absurd_size", "second_header", "zero_block", "lacing", "splice"}
    rejected = {o.mutation for o in outcomes if o.error_code == "ih5004"}
    assert {"absurd_size", "second_header", "lacing"} <= rejected


@settings(max_examples=300, derandomize=True)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
                              max_leaves=12).map(lambda v: __import__("json").dumps(v))))
def test_text_protocol_never_crashes(payload):
    message = parse_text_frame(payload)
    assert isinstance(message, Configure | CloseRequest | ProtocolError)
    if isinstance(message, ProtocolError):
        assert message.code in ("ih4000", "ih6001") and message.message
