"""The AsyncAPI document stays in sync with what the server really sends and accepts."""

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from inter1srv.client.events import EVENT_CLASSES
from inter1srv.protocol import constants
from inter1srv.protocol.asyncapi import END_REASONS, SERVER_EVENT_TYPES, asyncapi_document
from inter1srv.protocol.client_messages import Configure, parse_text_frame
from inter1srv.protocol.envelope import build_envelope, error_data
from inter1srv.synthmedia import default_script, encode_webm

ROOT = Path(__file__).resolve().parents[3]
DOC = asyncapi_document()
REGISTRY = Registry().with_resource("urn:asyncapi", Resource.from_contents(DOC, default_specification=DRAFT7))
BY_NAME = {m["name"]: m for m in DOC["components"]["messages"].values()}


def validator(message_name: str) -> Draft7Validator:
    ref = BY_NAME[message_name]["payload"]["$ref"]
    return Draft7Validator({"$ref": "urn:asyncapi" + ref}, registry=REGISTRY)


def problems(envelope: dict) -> list[str]:
    if envelope.get("type") not in BY_NAME:
        return [f"undocumented event type {envelope.get('type')!r}"]
    return [f"{envelope['type']}: {e.message} at {list(e.absolute_path)}"
            for e in validator(envelope["type"]).iter_errors(envelope)]


def _resolve(ref: str):
    node = DOC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_document_shape_and_every_ref_resolves():
    assert DOC["asyncapi"] == "3.0.0" and json.loads(json.dumps(DOC)) == DOC
    assert [c["address"] for c in DOC["channels"].values()] == list(constants.STREAM_PATHS)
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(DOC))
    assert refs
    for ref in refs:
        assert _resolve(ref) is not None, ref
    ops = DOC["operations"]
    assert {o["action"] for o in ops.values()} == {"send", "receive"}
    sent = {_resolve(m["$ref"])["$ref"].rsplit("/", 1)[1] for m in ops["sendEvents"]["messages"]}
    assert {DOC["components"]["messages"][m]["name"] for m in sent} == set(SERVER_EVENT_TYPES)
    for schema in DOC["components"]["schemas"].values():
        Draft7Validator.check_schema(schema)


def test_enums_come_from_the_constants():
    schemas = DOC["components"]["schemas"]
    assert schemas["SignalType"]["enum"] == list(constants.SIGNALS)
    assert schemas["ProbabilityBand"]["enum"] == list(constants.PROBABILITY_BANDS)
    assert schemas["IncludeFlag"]["enum"] == list(constants.OFFICIAL_INCLUDE_FLAGS)
    assert schemas["GoalDimension"]["enum"] == list(constants.GOAL_DIMENSIONS)
    assert schemas["EngagementUpdatedData"]["properties"]["state"]["enum"] == list(constants.ENGAGEMENT_STATES)
    codes = schemas["ErrorData"]["properties"]["code"]["enum"]
    assert set(codes) == set(constants.CLOSE_CODES)
    include = schemas["SessionConfigure"]["properties"]["include"]["items"]["enum"]
    assert set(include) == constants.ACCEPTED_INCLUDE_VALUES


def _emitted_in_source() -> tuple[set[str], set[str]]:
    """Event types and session end reasons named where the server builds events."""
    types, reasons = set(), set()
    call = re.compile(r'\b(?:_event|Event|_emit|build_envelope)\(\s*"([a-z_]+(?:\.[a-z_]+)?)"')
    drain = re.compile(r'\bbegin_drain\(\s*"([a-z_]+)"')
    for path in [*ROOT.glob("inter1srv/**/*.py"), *ROOT.glob("workers/**/*.py")]:
        if "client" in path.parts or "report" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        types |= set(call.findall(text))
        reasons |= set(drain.findall(text))
    return types, reasons


def test_every_event_type_the_server_code_emits_is_documented_and_typed():
    types, reasons = _emitted_in_source()
    assert {"session.ready", "signal.detected", "session.ended", "error"} <= types  # the scan works
    assert types <= set(SERVER_EVENT_TYPES), types - set(SERVER_EVENT_TYPES)
    assert set(SERVER_EVENT_TYPES) == set(EVENT_CLASSES)  # and the Python client types every one
    assert reasons and reasons <= set(END_REASONS), reasons - set(END_REASONS)


def test_schemas_reject_what_the_contract_forbids():
    data = {"signal_type": "confidence", "start": 1.0, "probability": "high", "probability_score": 0.8,
            "rationale": "r", "modality": ["paraverbal"], "cues": []}
    good = build_envelope("signal.detected", data, t=1.0, correlation_id="c")
    assert problems(good) == []
    assert problems({**good, "data": {**data, "probability": "very high"}})
    assert problems({**good, "data": {**data, "signal_type": "joy"}})
    assert problems({**good, "surprise": 1})
    nod = {"modality": "nonverbal", "cue": "head_nod", "value": 2.0, "start": 1.0, "end": 2.0, "rate_hz": 1.9}
    assert problems({**good, "data": {**data, "cues": [nod]}}) == []  # cue-specific measurements are fine
    assert problems({**good, "data": {**data, "cues": [{**nod, "modality": "telepathic"}]}})
    assert problems({k: v for k, v in good.items() if k != "correlation_id"})
    assert problems(build_envelope("error", error_data("ih9999", "x"), t=0, correlation_id="c"))
    assert problems({"type": "made.up", "t": 0})


@pytest.mark.parametrize("frame", [
    {"type": "session.configure", "include": ["conversation_quality", "feedback"]},
    {"include": ["conversation_quality_overall"]},
    {"goal_dimensions": ["clarity"]},
    {"type": "session.configure", "include": [], "goal_dimensions": ["energy"], "model": None},
    {"type": "session.configure", "include": ["nope"]},
    {"include": ["feedback"], "extra": 1},
    {"goal_dimensions": ["charm"]},
    {"type": "session.configure", "model": "big"},
])
def test_config_schema_agrees_with_the_server_parser(frame):
    accepted = isinstance(parse_text_frame(json.dumps(frame)), Configure)
    assert validator("session.configure").is_valid(frame) == accepted


def test_close_schema():
    assert validator("session.close").is_valid({"type": "session.close"})
    assert not validator("session.close").is_valid({"type": "session.close", "now": True})


# -- a real server: every envelope it sends and stores validates ------------------------------------------------
sys.path.insert(0, str(ROOT / "tests" / "e2e"))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from harness import ServerProcess

    srv = ServerProcess(tmp_path_factory.mktemp("asyncapi") / "data").start()
    yield srv
    srv.stop()


def test_a_real_session_validates_against_the_document(live):
    from harness import chunks_of, stream_session

    clip = encode_webm(default_script(14.0), width=160, height=120, fps=10)
    sent_bad = False

    async def poke(event, ws):
        nonlocal sent_bad
        if event["type"] == "session.updated" and not sent_bad:
            sent_bad = True
            await ws.send(json.dumps({"include": ["bogus"]}))  # ih6001, stays open
            await ws.send("not json")  # ih4000, stays open

    async def sessions():
        full = await stream_session(live.url, live.key, chunks_of(clip, 30_000), on_event=poke,
                                    config={"type": "session.configure", "include": ["conversation_quality"],
                                            "goal_dimensions": ["clarity", "energy"]})
        broken = await stream_session(live.url, live.key, [clip[:4000], b"\x00" * 2000])
        return full, broken

    full, broken = asyncio.run(sessions())
    seen = {e["type"] for e in full.events + broken.events}
    assert {"session.ready", "session.updated", "signal.detected", "conversation_quality.updated",
            "feedback.generated", "session.closing", "session.ended", "error"} <= seen
    assert {e["data"]["code"] for e in full.of("error")} == {"ih6001", "ih4000"}
    assert broken.close_code == 1007
    errors = [p for e in full.events + broken.events for p in problems(e)]
    assert errors == []
    stored = [json.loads(line) for f in (live.data_dir / "timelines").glob("*.jsonl")
              for line in f.read_text().splitlines() if line.strip()]
    assert len(stored) >= len(full.events)
    assert [p for e in stored for p in problems(e)] == []


def test_implicit_lines_of_an_abrupt_disconnect_validate(live):
    import time

    import websockets

    clip = encode_webm(default_script(12.0), width=160, height=120, fps=10)

    async def abrupt():
        headers = {"Authorization": f"Bearer {live.key}"}
        async with websockets.connect(live.url, additional_headers=headers, max_size=None) as ws:
            await ws.send(clip)
            async for message in ws:
                if json.loads(message)["type"] == "signal.detected":
                    return  # leave while the signal is active: an abrupt disconnect

    asyncio.run(abrupt())
    deadline = time.monotonic() + 15
    implicit: list[dict] = []
    while not implicit and time.monotonic() < deadline:
        time.sleep(0.2)
        implicit = [json.loads(line) for f in (live.data_dir / "timelines").glob("*.jsonl")
                    for line in f.read_text().splitlines() if '"implicit"' in line]
    assert implicit and all(e["implicit"] is True for e in implicit)
    assert [p for e in implicit for p in problems(e)] == []
