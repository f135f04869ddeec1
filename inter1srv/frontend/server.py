"""The frontend process: WebSocket sessions, HTTP probes, and the link to the sequencer."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import socket
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from inter1srv import __version__, logs, sdnotify
from inter1srv.config import ServerConfig
from inter1srv.ipc import AsyncChannel, ChannelClosed
from inter1srv.keys import KeyStore
from inter1srv.protocol.asyncapi import asyncapi_document
from inter1srv.protocol.constants import STREAM_PATHS
from shm.segment import sweep_stale

from .auth import SUBPROTOCOL, credential_from, offered_subprotocols
from .client_tokens import ClientTokenRoutes
from .credentials import TOKEN_PREFIX, CredentialStore, Principal
from .demo import DemoRoutes, demo_enabled
from .http import HttpRequest, HttpResponse, Router, connection_class
from .metrics import Metrics
from .session import Session
from .upload import UploadRoutes

log = logging.getLogger("inter1srv.frontend")
OPEN_TIMEOUT_S = 120  # also bounds how long a non-GET request (an upload) may take to arrive


class Frontend:
    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        self.keys = KeyStore(cfg.data_dir)
        self.credentials = CredentialStore(cfg.data_path)
        self.sessions: dict[str, Session] = {}
        self.sequencer: AsyncChannel | None = None
        self.workers_up = 0
        self.sequencer_stats: dict = {}  # counters and histograms pushed by the sequencer (for /metrics)
        self.metrics = Metrics()
        self.decode_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(4, 2 * (os.cpu_count() or 1)), thread_name_prefix="decode"
        )
        self.server_prefix = f"i1s.{cfg.instance_pid or os.getpid()}."
        self.draining = False
        self.timeline_dir = cfg.data_path / "timelines"
        self.timeline_dir.mkdir(parents=True, exist_ok=True)
        self.router = Router(max_body_bytes=cfg.max_upload_bytes + 1024 * 1024)
        self._register_routes()

    # -- readiness ------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.sequencer is not None and self.workers_up > 0 and not self.draining

    @property
    def capacity_left(self) -> int:
        return max(0, self.cfg.max_sessions - len(self.sessions))

    # -- HTTP side of the upgrade -------------------------------------------------
    def _register_routes(self) -> None:
        self.router.add("GET", "/healthz", self._healthz)
        self.router.add("GET", "/readyz", self._readyz)
        self.router.add("GET", "/metrics", self._metrics)
        self.router.add("GET", "/asyncapi.json", self._asyncapi)
        ClientTokenRoutes(self).register(self.router)
        UploadRoutes(self).register(self.router)
        if demo_enabled():
            DemoRoutes(self).register(self.router)

    async def _asyncapi(self, request: HttpRequest) -> HttpResponse:
        host = request.headers.get("host") or f"{self.cfg.host}:{self.cfg.port}"
        return HttpResponse.json(200, asyncapi_document(host=host))

    async def in_thread(self, fn, *args):
        """Run blocking work (SQLite, decoding) in the frontend's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self.decode_pool, fn, *args)

    def bill_usage(self, key_id: str, token_id: str | None, seconds: float | None) -> None:
        """Count a finished session's billed seconds against its key's (and token's) budget, off the loop."""
        if seconds:
            self.decode_pool.submit(self.credentials.add_usage, key_id, token_id, float(seconds))

    async def authenticate(self, credential: str | None, origin: str | None) -> Principal | None:
        """An API key, or a live client token (whose Origin must be allowed, and whose key must be live)."""
        if not credential:
            return None
        if credential.startswith(TOKEN_PREFIX):
            token = await self.in_thread(self.credentials.lookup, credential)
            if token is None or not token.origin_allowed(origin):
                return None
            key = self.keys.get(token.key_id)
            if key is None or key.revoked:
                return None
            return Principal(key, token)
        key = self.keys.verify(credential)
        return Principal(key) if key is not None else None

    async def _healthz(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"ok\n")

    async def _readyz(self, request: HttpRequest) -> HttpResponse:
        ready = self.ready and self.capacity_left > 0
        return HttpResponse.json(200 if ready else 503, {
            "ready": ready,
            "sessions": len(self.sessions),
            "capacity_left": self.capacity_left if self.ready else 0,
            "workers": self.workers_up,
            "version": __version__,
        })

    async def _metrics(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, self.metrics.render(self).encode(), "text/plain; version=0.0.4")

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path not in STREAM_PATHS:
            headers = {k.lower(): v for k, v in request.headers.raw_items()}
            return (await self.router.dispatch(HttpRequest("GET", request.path, headers))).to_websockets()
        principal = await self.authenticate(credential_from(request.headers), request.headers.get("Origin"))
        if principal is None:
            self.metrics.inc("auth_failures_total")
            response = HttpResponse(401, b"missing, unknown, expired or revoked credential (or origin not allowed)\n",
                                    headers={"WWW-Authenticate": 'Bearer realm="inter1srv"'})
            return response.to_websockets()
        connection.principal = principal  # type: ignore[attr-defined]
        connection.key_record = principal.key  # type: ignore[attr-defined]
        return None

    @staticmethod
    def select_subprotocol(connection: ServerConnection, subprotocols) -> str | None:
        return SUBPROTOCOL if SUBPROTOCOL in subprotocols else None

    # -- sessions -------------------------------------------------------------------
    async def handle(self, ws: ServerConnection) -> None:
        self._bound_send_buffer(ws)
        session = Session(self, ws)
        await session.run()

    def _bound_send_buffer(self, ws: ServerConnection) -> None:
        """A fixed kernel send buffer: events are a few kB/s, and a client that stops reading
        then fills it (and meets the slow-reader cut-off) within a bounded number of bytes."""
        size = self.cfg.event_send_buffer_bytes
        sock = ws.transport.get_extra_info("socket")
        if size > 0 and sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
            except OSError:
                pass

    def register(self, session: Session) -> None:
        self.sessions[session.sid] = session

    def unregister(self, session: Session) -> None:
        self.sessions.pop(session.sid, None)

    def to_sequencer(self, message: dict) -> bool:
        if self.sequencer is None:
            return False
        try:
            self.sequencer.send(message)
            return True
        except ChannelClosed:
            return False

    async def _sequencer_link(self, connected: asyncio.Event) -> None:
        """Keep a connection to the sequencer; route its messages to sessions."""
        while True:
            try:
                channel = await AsyncChannel.connect(self.cfg.control_socket)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            channel.send({"op": "hello", "role": "frontend", "pid": os.getpid()})
            self.sequencer = channel
            connected.set()
            try:
                while True:
                    msg = await channel.recv()
                    self._route(msg)
            except ChannelClosed:
                pass
            self.sequencer = None
            self.workers_up = 0
            logs.log(log, logging.ERROR, "sequencer connection lost", sessions=len(self.sessions))
            for session in list(self.sessions.values()):
                session.internal_failure("The analysis sequencer stopped; this session cannot continue.")
            await asyncio.sleep(0.2)

    def _route(self, msg: dict) -> None:
        op = msg.get("op")
        if op == "status":
            self.workers_up = int(msg.get("workers", 0))
            self.sequencer_stats = msg.get("stats") or self.sequencer_stats
            return
        session = self.sessions.get(msg.get("sid", ""))
        if session is None:
            return
        if op == "events":
            session.deliver(msg["events"], msg.get("frontier"), final=msg.get("final", False))
        elif op == "aborted":
            session.record_implicit(msg.get("implicit", []), msg.get("billed_seconds"))
        elif op == "failed":
            session.internal_failure(msg.get("message", "internal failure"))

    # -- lifecycle --------------------------------------------------------------------
    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        retire = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, retire.set)  # reload: stop accepting, finish sessions, exit
        removed = sweep_stale()  # rings of a dead predecessor (systemd restarts this role alone)
        if removed:
            logs.log(log, logging.WARNING, "removed stale shared memory", segments=len(removed))
        connected = asyncio.Event()
        link = asyncio.create_task(self._sequencer_link(connected))
        await connected.wait()
        async with serve(
            self.handle,
            self.cfg.host,
            self.cfg.port,
            process_request=self.process_request,
            select_subprotocol=self.select_subprotocol,
            compression=None,  # permessage-deflate costs ~35x on video bytes
            max_size=2 * self.cfg.max_segment_size_bytes,
            max_queue=4,
            reuse_port=True,
            server_header=f"inter1srv/{__version__}",
            create_connection=connection_class(self.router),
            open_timeout=OPEN_TIMEOUT_S,
        ) as server:
            while self.workers_up == 0:
                await asyncio.sleep(0.05)
            sdnotify.notify("READY=1")
            logs.log(log, logging.INFO, "frontend ready", host=self.cfg.host, port=self.cfg.port)
            watchdog = asyncio.create_task(self._watchdog())
            await _first(stop.wait(), retire.wait())
            sdnotify.notify("STOPPING=1")
            self.draining = True
            server.close(close_connections=False)
            if not stop.is_set():
                await self.retire(stop)
            await self.drain()
            watchdog.cancel()
        link.cancel()
        self.decode_pool.shutdown(wait=False, cancel_futures=True)

    async def retire(self, stop: asyncio.Event) -> None:
        """Reload: a newer frontend takes new connections; ours end naturally (or SIGTERM drains them)."""
        logs.log(log, logging.INFO, "retiring: finishing open sessions", sessions=len(self.sessions))
        while self.sessions and not stop.is_set():
            await asyncio.sleep(0.2)

    async def drain(self) -> None:
        sessions = list(self.sessions.values())
        for session in sessions:
            session.begin_drain("server_shutdown")
        if sessions:
            await asyncio.wait([asyncio.ensure_future(s.done.wait()) for s in sessions],
                               timeout=self.cfg.max_drain_seconds + 5)

    async def _watchdog(self) -> None:
        interval = sdnotify.watchdog_interval()
        if interval is None:
            return
        while True:
            await asyncio.sleep(interval)
            sdnotify.notify("WATCHDOG=1")


async def _first(*aws) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()


def main(cfg: ServerConfig) -> None:
    logs.setup("frontend")
    import uvloop

    uvloop.run(Frontend(cfg).run())


__all__ = ["Frontend", "main", "offered_subprotocols"]
