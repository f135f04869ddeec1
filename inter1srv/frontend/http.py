"""Plain HTTP requests on the WebSocket port (``POST /v1/...``, pages, probes).

websockets parses only ``GET`` upgrade requests, so the connection class used by
the server (:func:`connection_class`) looks at the first bytes of each
connection: ``GET`` goes to websockets as usual (and non-upgrade GETs reach the
router through ``process_request``); any other method is read here as one
HTTP/1.1 request (Content-Length bodies only), answered by the router, and closed.
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

MAX_HEADER_BYTES = 64 * 1024


@dataclass
class HttpRequest:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    peer: str | None = None

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def json(self):
        return orjson.loads(self.body)


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload) -> HttpResponse:
        return cls(status, orjson.dumps(payload) + b"\n", "application/json")

    @classmethod
    def error(cls, status: int, code: str, message: str) -> HttpResponse:
        # "error_id" / "message" at the top level are what the official SDK's error parser reads
        return cls.json(status, {"error_id": code, "message": message, "error": {"code": code, "message": message}})

    def to_websockets(self) -> Response:
        headers = Headers({"Content-Type": self.content_type, "Content-Length": str(len(self.body)), **self.headers})
        return Response(self.status, http.HTTPStatus(self.status).phrase, headers, self.body)

    def to_bytes(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {http.HTTPStatus(self.status).phrase}",
                 f"Content-Type: {self.content_type}", f"Content-Length: {len(self.body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class Router:
    def __init__(self, max_body_bytes: int):
        self.max_body_bytes = max_body_bytes
        self.routes: dict[tuple[str, str], Handler] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method.upper(), path)] = handler

    def has_path(self, path: str) -> bool:
        return any(p == path for _, p in self.routes)

    async def dispatch(self, request: HttpRequest) -> HttpResponse:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            if self.has_path(request.path):
                return HttpResponse.error(405, "method_not_allowed", f"{request.method} is not allowed here.")
            return HttpResponse.error(404, "not_found", f"No route for {request.path}.")
        try:
            return await handler(request)
        except Exception as exc:  # noqa: BLE001 - a failing handler answers 500, the server lives on
            import logging

            logging.getLogger("inter1srv.http").exception("handler failed")
            return HttpResponse.error(500, "internal", f"Internal error: {type(exc).__name__}.")


class _RawExchange:
    """One non-GET HTTP/1.1 request read from the transport and answered by the router."""

    def __init__(self, transport: asyncio.Transport, router: Router):
        self.transport = transport
        self.router = router
        self.buffer = bytearray()
        self.head: tuple[str, str, dict[str, str]] | None = None
        self.length = 0
        self.done = False
        self.task: asyncio.Task | None = None

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self.buffer += data
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    self._respond(HttpResponse.error(431, "headers_too_large", "Request headers are too large."))
                return
            try:
                self.head = _parse_head(bytes(self.buffer[:end]))
            except ValueError as exc:
                self._respond(HttpResponse.error(400, "bad_request", str(exc)))
                return
            del self.buffer[: end + 4]
            headers = self.head[2]
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._respond(HttpResponse.error(411, "length_required", "Send a Content-Length body."))
                return
            try:
                self.length = int(headers.get("content-length", "0"))
            except ValueError:
                self._respond(HttpResponse.error(400, "bad_request", "Invalid Content-Length."))
                return
            if self.length > self.router.max_body_bytes:
                self._respond(HttpResponse.error(413, "payload_too_large",
                                                 f"Body over {self.router.max_body_bytes} bytes."))
                return
        if len(self.buffer) >= self.length:
            method, target, headers = self.head
            peer = self.transport.get_extra_info("peername")
            request = HttpRequest(method, target, headers, bytes(self.buffer[: self.length]),
                                  str(peer[0]) if peer else None)
            self.done = True
            self.task = asyncio.get_running_loop().create_task(self._answer(request))

    def client_gone(self) -> None:
        """The client disconnected before the answer: stop the work done for it (e.g. an upload)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            self.transport.close()  # nobody is left to answer

    async def _answer(self, request: HttpRequest) -> None:
        self._respond(await self.router.dispatch(request))

    def _respond(self, response: HttpResponse) -> None:
        self.done = True
        if not self.transport.is_closing():
            self.transport.write(response.to_bytes())
            self.transport.close()


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("Malformed request line.")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError("Malformed header line.")
        headers[name.strip().lower()] = value.strip()
    return parts[0].upper(), parts[1], headers


def connection_class(router: Router) -> type[ServerConnection]:
    """A ServerConnection that hands non-GET requests to ``router``."""

    class HybridConnection(ServerConnection):
        _sniff = b""
        _raw: _RawExchange | None = None
        _decided = False

        def data_received(self, data: bytes) -> None:
            if self._raw is not None:
                self._raw.feed(data)
                return
            if self._decided:
                super().data_received(data)
                return
            buffered = self._sniff + data
            if b" " not in buffered[:16] and len(buffered) < 16:
                self._sniff = buffered
                return
            self._decided = True
            self._sniff = b""
            if buffered.startswith(b"GET "):
                super().data_received(buffered)
            else:
                self._raw = _RawExchange(self.transport, router)
                self._raw.feed(buffered)

        def eof_received(self) -> bool | None:
            if self._raw is not None:
                # A client that closes its side while its request is being worked on has gone (a
                # killed process sends FIN): the work for it stops. Half-closing after the request
                # to wait for the answer is legal HTTP/1.1 but no client of this API does it.
                self._raw.client_gone()
                return True  # keep the transport open to answer what was answered before the EOF
            return super().eof_received()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._raw is not None:
                self._raw.client_gone()
            super().connection_lost(exc)

    return HybridConnection
