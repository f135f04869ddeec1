"""The async client against a tiny in-process WebSocket server scripted per test."""

import asyncio
import json

import pytest
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from inter1srv.client import (
    AuthenticationError,
    ClientError,
    ErrorEvent,
    SessionClosedError,
    SessionEnded,
    SessionReady,
    SessionRefused,
    SessionUpdated,
    connect,
)
from inter1srv.protocol.envelope import build_envelope, encode, error_data

KEY = "secret-key"
READY = {"session_idle_timeout_seconds": 30, "session_max_duration_seconds": 3600,
         "max_segment_duration_seconds": None, "min_segment_size_bytes": 1, "max_segment_size_bytes": 1000}


def _env(etype: str, data: dict, t: float = 0.0) -> str:
    return encode(build_envelope(etype, data, t=t, correlation_id="c"))


class FakeServer:
    """Checks the credential like the real one, then runs ``script(ws, received)``."""

    def __init__(self, script):
        self.script = script
        self.received: list = []
        self.request_headers: Headers | None = None
        self.subprotocol: str | None = None

    def _auth(self, connection, request):
        self.request_headers = request.headers
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        bearer = request.headers.get("Authorization", "")
        if bearer != f"Bearer {KEY}" and offered != ["access_token", KEY]:
            return Response(401, "Unauthorized", Headers([("Content-Length", "0")]), b"")
        return None

    def _select(self, connection, offered):
        self.subprotocol = "access_token" if "access_token" in offered else None
        return self.subprotocol

    async def _handler(self, ws):
        await self.script(ws, self.received)

    async def __aenter__(self):
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._auth,
                                   select_subprotocol=self._select, compression=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v1/stream/analyze"
        return self

    async def __aexit__(self, *exc):
        self._server.close()
        await self._server.wait_closed()


async def graceful(ws, received):
    """ready; updated on config; on session.close: closing, ended, close 1000."""
    await ws.send(_env("session.ready", READY))
    async for message in ws:
        received.append(message)
        if isinstance(message, bytes):
            continue
        msg = json.loads(message)
        if msg.get("type") == "session.configure":
            await ws.send(_env("session.updated", {"include": msg["include"], "goal_dimensions": None,
                                                   "model": None}))
        elif msg.get("type") == "session.close":
            total = sum(len(m) for m in received if isinstance(m, bytes))
            await ws.send(_env("session.closing", {"max_drain_seconds": 60}))
            await ws.send(_env("session.ended", {"reason": "client_shutdown", "billed_seconds": float(total),
                                                 "analyzed_ranges": [], "dropped_ranges": []}, t=total))
            await ws.close(1000, "session ended")
            return


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


@pytest.mark.parametrize("subprotocol", [False, True])
def test_full_session_with_either_auth(subprotocol):
    async def main():
        async with FakeServer(graceful) as srv:
            async with connect(srv.url, KEY, subprotocol=subprotocol) as session:
                ready = await session.wait_ready()
                await session.configure(include=["conversation_quality_overall"])
                await session.send(b"abc")
                await session.send(b"defg")
                result = await session.close()
                events = [e async for e in session]
                again = [e async for e in session]
            return srv, ready, result, events, again

    srv, ready, result, events, again = run(main())
    assert isinstance(ready, SessionReady) and ready.max_segment_size_bytes == 1000
    assert [e.type for e in events] == ["session.ready", "session.updated", "session.closing", "session.ended"]
    assert isinstance(events[1], SessionUpdated) and events[1].include == ["conversation_quality_overall"]
    assert again == []  # iteration ends for good once the socket closed
    assert result.ok and result.code == 1000 and isinstance(result.ended, SessionEnded)
    assert result.ended.billed_seconds == 7.0
    assert srv.received[1:3] == [b"abc", b"defg"] and json.loads(srv.received[-1]) == {"type": "session.close"}
    assert "permessage-deflate" not in srv.request_headers.get("Sec-WebSocket-Extensions", "")
    if subprotocol:
        assert srv.subprotocol == "access_token" and "Authorization" not in srv.request_headers
    else:
        assert srv.request_headers["Authorization"] == f"Bearer {KEY}"


def test_bad_key_is_a_clear_authentication_error():
    async def main():
        async with FakeServer(graceful) as srv:
            with pytest.raises(AuthenticationError, match="401"):
                await connect(srv.url, "wrong")

    run(main())


def test_no_server_is_a_client_error():
    async def main():
        await connect("ws://127.0.0.1:9/v1/stream/analyze", KEY, open_timeout=3)

    with pytest.raises(ClientError, match="cannot connect"):
        run(main())


def test_capacity_refusal_raises_session_refused():
    async def refuse(ws, received):
        await ws.send(_env("error", error_data("ih1003", "no capacity")))
        await ws.close(1013, "no capacity")

    async def main():
        async with FakeServer(refuse) as srv:
            session = await connect(srv.url, KEY)
            with pytest.raises(SessionRefused) as info:
                await session.wait_ready()
            await session.abort()
            return info.value, session.result()

    refused, result = run(main())
    assert refused.error.code == "ih1003"
    assert result.code == 1013 and result.error is not None and not result.ok


def test_an_error_that_closes_the_session_is_reported_and_send_fails_after():
    async def malformed(ws, received):
        await ws.send(_env("session.ready", READY))
        await ws.recv()
        await ws.send(_env("error", error_data("ih5004", "malformed WebM", segment=0)))
        await ws.close(1007, "malformed")

    async def main():
        async with FakeServer(malformed) as srv:
            async with connect(srv.url, KEY) as session:
                await session.wait_ready()
                await session.send(b"junk")
                events = [e async for e in session]
                with pytest.raises(SessionClosedError):
                    await session.send(b"more")
                return events, await session.close()

    events, result = run(main())
    assert isinstance(events[-1], ErrorEvent) and events[-1].code == "ih5004"
    assert result.code == 1007 and result.error.code == "ih5004" and result.ended is None and not result.ok


def test_errors_that_keep_the_session_open_are_not_closing_errors():
    async def tolerant(ws, received):
        await ws.send(_env("session.ready", READY))
        await ws.send(_env("error", error_data("ih6001", "bad config")))
        await graceful_tail(ws)

    async def graceful_tail(ws):
        await ws.recv()
        await ws.send(_env("session.ended", {"reason": "client_shutdown", "billed_seconds": 0.0,
                                             "analyzed_ranges": [], "dropped_ranges": []}))
        await ws.close(1000)

    async def main():
        async with FakeServer(tolerant) as srv:
            async with connect(srv.url, KEY) as session:
                await session.wait_ready()
                return await session.close()

    result = run(main())
    assert result.ok and result.error is None
