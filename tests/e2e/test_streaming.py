"""A real server, real WebM, real WebSocket clients: the same events whatever the split."""

import asyncio
import json
import sqlite3

import pytest
from harness import assert_well_formed, chunks_of, stream_session

from inter1srv.sequencer.ranges import total
from inter1srv.synthmedia import default_script, encode_webm

CONFIG = {"type": "session.configure", "include": ["conversation_quality", "feedback"]}


def _normalise(events):
    out = []
    for e in events:
        if e["type"] in ("session.ready", "session.updated", "session.closing"):
            continue  # their place among analysis events depends on network timing
        data = dict(e["data"])
        data.pop("session_id", None)
        out.append((e["type"], round(e["t"], 2), json.dumps(_round(data), sort_keys=True)))
    return out


def _round(value):
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def test_any_split_gives_the_same_events(server, clip):
    splits = {"1B": 1, "1000B": 1000, "64KiB": 65536, "whole": len(clip)}

    async def run_all():
        return await asyncio.gather(*[
            stream_session(server.url, server.key, chunks_of(clip, size), config=CONFIG)
            for size in splits.values()
        ])

    records = dict(zip(splits, asyncio.run(run_all()), strict=True))
    reference = None
    for name, record in records.items():
        assert record.close_code == 1000, (name, record.close_code, record.events[-3:], server.log_tail())
        assert_well_formed(record)
        ended = record.ended["data"]
        assert ended["reason"] == "client_shutdown"
        assert ended["dropped_ranges"] == [], name
        assert abs(ended["billed_seconds"] - 30.0) < 0.2, (name, ended)
        assert record.of("signal.detected"), "the clip's lively parts must raise at least one signal"
        assert record.of("conversation_quality.updated")
        assert record.of("feedback.generated")
        assert record.of("engagement.updated")
        normalised = _normalise(record.events)
        if reference is None:
            reference = normalised
        else:
            assert normalised == reference, f"{name} differs from the 1-byte split"


def test_billing_ledger_and_timeline_are_complete_after_session_ended(server, clip):
    record = asyncio.run(stream_session(server.url, server.key, chunks_of(clip, 32 * 1024), config=CONFIG))
    assert record.close_code == 1000
    ended = record.ended["data"]
    sid = record.events[0]["data"]["session_id"]
    db = sqlite3.connect(server.data_dir / "ledger.sqlite3")
    billed, reason, analyzed = db.execute(
        "SELECT billed_seconds, reason, analyzed_ranges FROM sessions WHERE session_id = ?", (sid,)
    ).fetchone()
    assert billed == ended["billed_seconds"] and reason == "client_shutdown"
    windows = db.execute("SELECT start_s, end_s FROM billed_windows WHERE session_id = ?", (sid,)).fetchall()
    assert round(total(windows), 3) == billed
    timeline = [json.loads(line) for line in (server.data_dir / "timelines" / f"{sid}.jsonl").read_text().splitlines()]
    assert [e["type"] for e in timeline] == [e["type"] for e in record.events]
    assert timeline[-1]["type"] == "session.ended"


def test_subprotocol_auth_selects_access_token(server, clip):
    record = asyncio.run(
        stream_session(server.url, server.key, chunks_of(clip, 50_000), subprotocol=True)
    )
    assert record.close_code == 1000
    assert_well_formed(record)


def test_quickstart_client_works_as_written(server, clip, capsys):
    import websockets

    async def stream_session(video_chunks, api_key, url="ws://127.0.0.1:8080/v1/stream"):
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {api_key}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.ready"
            await ws.send(json.dumps({"type": "session.configure",
                                      "include": ["conversation_quality", "feedback"]}))

            async def sender():
                for chunk in video_chunks:
                    await ws.send(chunk)
                await ws.send(json.dumps({"type": "session.close"}))

            async def receiver():
                async for message in ws:
                    print(json.loads(message))
            await asyncio.gather(sender(), receiver())

    asyncio.run(stream_session(chunks_of(clip, 100_000), server.key, url=f"ws://{server.base}/v1/stream"))
    printed = capsys.readouterr().out
    assert "'type': 'session.ended'" in printed
    assert "'type': 'signal.detected'" in printed


def test_plain_client_reading_only_flat_fields(server, clip):
    lines = []

    async def on_event(event, _ws):
        if event["type"] == "signal.detected":
            lines.append(f"[{event['t']}s] {event['signal']} started (p={event['probability']:.2f})")
        elif event["type"] == "engagement.updated":
            lines.append(f"engagement {event['state']}")
        elif event["type"] == "conversation_quality.updated":
            lines.append(f"cqi {event['scores']['quality_index']}")
        elif event["type"] == "feedback.generated":
            lines.append(f"feedback {event['text']}")

    record = asyncio.run(stream_session(server.url, server.key, chunks_of(clip, 64 * 1024), config=CONFIG,
                                        on_event=on_event))
    assert record.close_code == 1000
    assert any(" started (p=" in line for line in lines)
    assert any(line.startswith("cqi ") for line in lines)
    assert any(line.startswith("feedback ") for line in lines)


async def _sdk_session(server, chunks: list[bytes], **config):
    """One session through the official SDK: (session.ready, every later event, close info)."""
    from interhumanai import InterhumanClient

    client = InterhumanClient(access_token=server.key, base_url=f"http://{server.base}")
    async with client.stream() as stream:
        ready = await stream.wait_for_session_ready()
        if config:
            await stream.update_config(**config)
        for chunk in chunks:
            await stream.send_video(chunk)
        await stream.request_close()
        events = [event async for event in stream]
        info = await stream.wait_closed()
    return ready, events, info


@pytest.mark.timeout(180)
def test_official_sdk(server, clip):
    from interhumanai.stream import SessionEndedEvent, SessionReadyEvent, UnknownEvent

    ready, events, info = asyncio.run(_sdk_session(
        server, chunks_of(clip, 256 * 1024),
        include=["conversation_quality_overall", "conversation_quality_timeline"], goal_dimensions=["clarity", "energy"]))
    assert isinstance(ready, SessionReadyEvent)
    assert info.code == 1000
    assert not [e for e in events if isinstance(e, (UnknownEvent, Exception))]
    types = [e.type for e in events]
    assert "session.updated" in types and "signal.detected" in types and "feedback.generated" in types
    assert isinstance(events[-1], SessionEndedEvent)


def test_official_sdk_on_a_stream_without_audio(server):
    """The SDK parses coverage.degraded's reason as "video_gap" only: "no_audio" must not reach it."""
    from interhumanai.stream import SessionEndedEvent

    video_only = encode_webm(default_script(12.0), width=320, height=240, fps=15, audio=False)

    _ready, events, info = asyncio.run(_sdk_session(server, chunks_of(video_only, 64 * 1024)))
    assert info.code == 1000
    assert isinstance(events[-1], SessionEndedEvent) and events[-1].data.reason == "client_shutdown"
    assert any(e.type == "signal.detected" or e.type == "engagement.updated" for e in events)
    # the SDK's SessionReadyData drops our session_id: find the session by its withheld records
    withheld = [e for path in (server.data_dir / "timelines").glob("*.jsonl")
                for e in map(json.loads, path.read_text().splitlines()) if e.get("withheld")]
    assert withheld and {e["data"]["reason"] for e in withheld} == {"no_audio"}, "kept server-side, not invented away"
