"""An async client for ``WS /v1/stream/analyze`` (no official SDK needed).

    async with connect(url, key) as session:
        await session.wait_ready()
        await session.configure(include=["conversation_quality"], goal_dimensions=["clarity"])
        await session.send(webm_bytes)
        result = await session.close()      # session.close, then drain to session.ended + close
        async for event in session:          # every event received, typed
            ...

A background task reads the socket into a queue, so sending never waits for the
reader and iteration sees every event (``session.ready`` included) once, in
order, ending when the socket has closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .events import ErrorEvent, Event, SessionEnded, SessionReady, parse_event

DEFAULT_URL = "ws://127.0.0.1:8080/v1/stream/analyze"


class ClientError(Exception):
    """Anything that stops this client from talking to the server."""


class AuthenticationError(ClientError):
    """The server refused the credential (HTTP 401 on the upgrade, no WebSocket)."""


class SessionRefused(ClientError):
    """The server answered the upgrade with an error instead of ``session.ready`` (e.g. ih1003)."""

    def __init__(self, error: ErrorEvent):
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


class SessionClosedError(ClientError):
    """The session's socket is closed: nothing more can be sent."""


@dataclass(frozen=True)
class CloseResult:
    """How a session ended: its ``session.ended`` (if any), the close code and the error that closed it."""

    ended: SessionEnded | None
    code: int | None
    reason: str
    error: ErrorEvent | None

    @property
    def ok(self) -> bool:
        return self.code == 1000 and self.ended is not None and self.error is None


_END = object()


class StreamSession:
    """One streaming session over an open WebSocket."""

    def __init__(self, ws: Any):
        self._ws = ws
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._ready_seen = asyncio.Event()
        self.ready: SessionReady | None = None
        self.ended: SessionEnded | None = None
        self.errors: list[ErrorEvent] = []
        self.events_received = 0
        self._reader = asyncio.create_task(self._read())

    # -- receiving --------------------------------------------------------------------------
    async def _read(self) -> None:
        try:
            async for message in self._ws:
                event = parse_event(message)
                self._note(event)
                self._queue.put_nowait(event)
        except ConnectionClosed:
            pass
        finally:
            self._ready_seen.set()
            self._queue.put_nowait(_END)

    def _note(self, event: Event) -> None:
        self.events_received += 1
        if isinstance(event, SessionReady):
            self.ready = event
            self._ready_seen.set()
        elif isinstance(event, SessionEnded):
            self.ended = event
        elif isinstance(event, ErrorEvent):
            self.errors.append(event)
            if self.ready is None:
                self._ready_seen.set()

    def __aiter__(self) -> StreamSession:
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)
            raise StopAsyncIteration
        return item

    @property
    def closed(self) -> bool:
        return self._reader.done()

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    @property
    def closing_error(self) -> ErrorEvent | None:
        """The last error that ended the session: one that ends it cleanly (ih6003, ih6004) or any
        error with a close code when the socket closed with something other than 1000."""
        failed = self.close_code not in (None, 1000)
        closing = [e for e in self.errors if e.close_code == 1000 or (failed and e.closes_session)]
        return closing[-1] if closing else None

    async def wait_ready(self, timeout: float | None = 30.0) -> SessionReady:
        """Wait for ``session.ready``; raise :class:`SessionRefused` if an error came instead."""
        await asyncio.wait_for(self._ready_seen.wait(), timeout)
        if self.ready is not None:
            return self.ready
        if self.errors:
            raise SessionRefused(self.errors[0])
        raise ClientError(f"connection closed before session.ready (code {self.close_code})")

    # -- sending ----------------------------------------------------------------------------
    async def _send(self, message: str | bytes) -> None:
        try:
            await self._ws.send(message)
        except ConnectionClosed as exc:
            raise SessionClosedError(f"the session is closed (code {self.close_code})") from exc

    async def configure(self, include: list[str] | None = None, goal_dimensions: list[str] | None = None) -> None:
        """Send a ``session.configure`` (answered by ``session.updated``; each config replaces the last)."""
        message: dict[str, Any] = {"type": "session.configure", "include": list(include or [])}
        if goal_dimensions is not None:
            message["goal_dimensions"] = list(goal_dimensions)
        await self._send(json.dumps(message))

    async def send(self, chunk: bytes) -> None:
        """The next bytes of the WebM stream (any split is legal)."""
        await self._send(bytes(chunk))

    async def close(self, timeout: float | None = None) -> CloseResult:
        """Ask for a graceful close and wait until ``session.ended`` and the socket close."""
        if not self.closed:
            try:
                await self._ws.send(json.dumps({"type": "session.close"}))
            except ConnectionClosed:
                pass
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), timeout)
            except TimeoutError:
                await self.abort()
        return self.result()

    async def abort(self) -> None:
        """Close the socket at once (the server treats it as an abrupt disconnect)."""
        await self._ws.close()
        await self._reader

    def result(self) -> CloseResult:
        return CloseResult(self.ended, self.close_code, self._ws.close_reason or "", self.closing_error)

    async def __aenter__(self) -> StreamSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self.closed:
            await self.abort()


class _Connect:
    """Awaitable and async context manager returned by :func:`connect`."""

    def __init__(self, url: str, key: str, subprotocol: bool, open_timeout: float):
        self._args = (url, key, subprotocol, open_timeout)
        self._session: StreamSession | None = None

    def __await__(self) -> Generator[Any, None, StreamSession]:
        return _open(*self._args).__await__()

    async def __aenter__(self) -> StreamSession:
        self._session = await _open(*self._args)
        return self._session

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.__aexit__(*exc)


async def _open(url: str, key: str, subprotocol: bool, open_timeout: float) -> StreamSession:
    kwargs: dict[str, Any] = {
        "compression": None,  # video bytes do not compress; the server offers none either
        "max_size": None,
        "ping_interval": None,  # a backpressured server reads no pings; the session has its own timeouts
        "open_timeout": open_timeout,
    }
    if subprotocol:
        kwargs["subprotocols"] = ["access_token", key]
    else:
        kwargs["additional_headers"] = {"Authorization": f"Bearer {key}"}
    try:
        ws = await websockets.connect(url, **kwargs)
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status == 401:
            raise AuthenticationError(f"{url}: the server refused the API key (HTTP 401)") from exc
        raise ClientError(f"{url}: the server answered HTTP {status} instead of a WebSocket") from exc
    except (OSError, TimeoutError, websockets.InvalidURI, websockets.InvalidHandshake) as exc:
        raise ClientError(f"{url}: cannot connect ({exc})") from exc
    return StreamSession(ws)


def connect(url: str = DEFAULT_URL, key: str = "", *, subprotocol: bool = False,
            open_timeout: float = 30.0) -> _Connect:
    """Open a session: ``await connect(...)`` or ``async with connect(...) as session``.

    ``subprotocol=True`` sends the key as the browser-style ``access_token, KEY``
    subprotocol pair instead of an ``Authorization: Bearer`` header.
    """
    return _Connect(url, key, subprotocol, open_timeout)
