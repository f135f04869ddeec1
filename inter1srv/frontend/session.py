"""One client connection: the session's protocol state, media ingest and ordered event delivery."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from inter1srv import __version__, logs
from inter1srv.ingest.errors import IngestError
from inter1srv.protocol.client_messages import (
    CloseRequest,
    Configure,
    ProtocolError,
    SessionConfig,
    parse_text_frame,
)
from inter1srv.protocol.constants import GOAL_DIMENSIONS, OFFICIAL_INCLUDE_FLAGS, SIGNALS, ErrorCode
from inter1srv.protocol.envelope import build_envelope, close_code_for, encode, error_data

from .api import CREDENTIAL_REVOKED
from .credentials import Principal, Refusal
from .message_rate import MessageRate
from .pipeline import MediaPipeline

log = logging.getLogger("inter1srv.frontend.session")

_CLOSE = object()
TIMER_TOLERANCE_S = 0.005  # event-loop timers (uvloop: milliseconds) may fire this early


class Session:
    def __init__(self, frontend, ws: ServerConnection):
        self.fe = frontend
        self.cfg = frontend.cfg
        self.ws = ws
        self.sid = "sess_" + uuid.uuid4().hex[:20]
        self.correlation_id = str(uuid.uuid4())
        self.principal: Principal | None = getattr(ws, "principal", None)
        self.key = self.principal.key if self.principal else getattr(ws, "key_record", None)
        self.token = self.principal.token if self.principal else None
        self.max_duration = _min_cap(self.cfg.session_max_duration_seconds,
                                     self.key and self.key.max_session_seconds,
                                     self.token and self.token.max_duration_seconds)
        self.media_budget: float | None = None  # media seconds left in the key's / token's budget
        self.budget_reached = False
        self.bytes_in = 0
        self.admitted = False
        self.config = SessionConfig()
        self.state = "open"  # open -> closing -> ended | failed | aborted
        self.pipeline: MediaPipeline | None = None
        self.media_lock = asyncio.Lock()
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.frontier = 0.0
        self.frontier_moved = asyncio.Event()
        self.ended_sent = asyncio.Event()
        self.implicit_recorded = asyncio.Event()
        self.done = asyncio.Event()
        self.sent_until = 0.0
        self.segment = 0
        self.final_close_code = 1000
        self.started = time.monotonic()
        self.last_media = self.started
        self.warned: set[str] = set()
        self.timeline = None
        self._drain_task: asyncio.Task | None = None
        self._ingest_task: asyncio.Task | None = None
        self.pending = bytearray()  # received, not yet fed to the demuxer
        self.pending_segment = 0
        self.ingest_wakeup = asyncio.Event()
        self.ingest_room = asyncio.Event()
        # the official SDK announces itself in the query; it validates coverage.degraded's reason as
        # "video_gap" only, so other reasons are kept in the timeline and not sent to it
        self.sdk_client = _is_official_sdk(ws)
        self.rate = MessageRate(self.cfg.max_messages_per_second, self.cfg.max_message_burst,
                                self.cfg.max_text_messages_per_second, self.cfg.max_text_message_burst)

    # -- entry --------------------------------------------------------------------
    async def run(self) -> None:
        if not self.fe.ready or self.fe.capacity_left <= 0:
            await self._refuse("No analysis capacity is available right now; try again shortly.")
            return
        if self.principal is not None:
            try:
                self.media_budget = await self._in_thread(self.fe.credentials.admit, self.sid, self.principal)
                self.admitted = True
            except Refusal as exc:
                await self._refuse(str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - e.g. a full disk under the data dir
                logs.log(log, logging.ERROR, "admission failed", session=self.sid, error=str(exc))
                await self._refuse("The server cannot record this session right now (storage failure).",
                                   code=ErrorCode.INTERNAL, close_code=1011)
                return
        self.fe.register(self)
        self.fe.metrics.inc("sessions_total")
        sender = None
        try:
            self.pipeline = MediaPipeline(self.cfg, self.fe.server_prefix, self.sid)
            opened = self.fe.to_sequencer(
                {
                    "op": "open",
                    "sid": self.sid,
                    "ring": self.pipeline.ring_name,
                    "key_id": self.key.key_id if self.key else None,
                    "token_id": self.token.token_id if self.token else None,
                    "correlation_id": self.correlation_id,
                    "config": self._config_message(),
                }
            )
            if not opened:
                await self._refuse("The analysis sequencer is not available.")
                return
            self.timeline = open(self.fe.timeline_dir / f"{self.sid}.jsonl", "ab")
            sender = asyncio.create_task(self._sender())
            self._emit("session.ready", self._ready_data())
            logs.log(log, logging.INFO, "session opened", session=self.sid, correlation_id=self.correlation_id,
                     key_id=self.key.key_id if self.key else None)
            await self._receive_loop()
        except Exception:  # noqa: BLE001 - any bug ends this session only, with ih1001
            log.exception("session failed")
            self.internal_failure("Internal failure of this session.")
        finally:
            await self._cleanup(sender)

    async def _refuse(self, message: str, code: str = ErrorCode.NO_CAPACITY, close_code: int = 1013) -> None:
        envelope = build_envelope("error", error_data(code, message), t=0.0, correlation_id=self.correlation_id)
        try:
            await self.ws.send(encode(envelope))
            await self.ws.close(close_code, "no capacity" if close_code == 1013 else "internal failure")
        except ConnectionClosed:
            pass
        self.state = "ended"
        if self.admitted:
            await self._in_thread(self.fe.credentials.release, self.sid)
            self.admitted = False
        self.done.set()

    def _ready_data(self) -> dict:
        return {
            "session_idle_timeout_seconds": self.cfg.session_idle_timeout_seconds,
            "session_max_duration_seconds": self.max_duration,
            "max_segment_duration_seconds": None,
            "min_segment_size_bytes": self.cfg.min_segment_size_bytes,
            "max_segment_size_bytes": self.cfg.max_segment_size_bytes,
            "supported_session_config_options": {
                "include": list(OFFICIAL_INCLUDE_FLAGS),
                "goal_dimensions": list(GOAL_DIMENSIONS),
                "model": None,
            },
            "session_id": self.sid,
            "window_seconds": self.cfg.window_seconds,
            "hop_seconds": self.cfg.hop_seconds,
            "lead_in_windows": bool(self.cfg.lead_in_windows),
            "signals": list(SIGNALS),
            "server_version": __version__,
        }

    def _config_message(self) -> dict:
        return {"include": list(self.config.include), "goal_dimensions": self.config.goal_dimensions}

    # -- receiving --------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        while True:
            timeout = self._time_left()
            try:
                message = await asyncio.wait_for(self.ws.recv(), timeout=timeout)
            except TimeoutError:
                self._on_timeout()
                continue
            except ConnectionClosed:
                return
            broken = self.rate.admit(time.monotonic(), isinstance(message, str))
            if broken is not None:
                self._flooded(broken)
                return
            if isinstance(message, str):
                self._on_text(message)
            else:
                await self._on_binary(message)

    def _time_left(self) -> float | None:
        if self.state != "open":
            return None
        now = time.monotonic()
        idle = self.last_media + self.cfg.session_idle_timeout_seconds - now
        lifetime = self.started + self.max_duration - now
        return max(0.0, min(idle, lifetime))

    def _on_timeout(self) -> None:
        # which deadline fired: the earlier one (uvloop's millisecond timers may fire a hair early,
        # so "now >= lifetime deadline" alone would call a max-duration stop an idle timeout)
        now = time.monotonic() + TIMER_TOLERANCE_S
        lifetime_end = self.started + self.max_duration
        idle_end = self.last_media + self.cfg.session_idle_timeout_seconds
        if now >= lifetime_end and lifetime_end <= idle_end:
            self.begin_drain("max_duration", ErrorCode.MAX_DURATION,
                             f"Maximum session duration of {self.max_duration} s reached.")
        elif now >= idle_end:
            self.begin_drain("idle_timeout", ErrorCode.IDLE_TIMEOUT,
                             f"No media for {self.cfg.session_idle_timeout_seconds} s.")
        # else: media moved the idle deadline while we waited; the receive loop waits again

    def _flooded(self, limit: str) -> None:
        """A flood ends the session at once: no more is read; what was delivered stays billed."""
        logs.log(log, logging.WARNING, "message flood cut off", session=self.sid, limit=limit)
        self.fe.metrics.inc("floods_total")
        self._fatal(ErrorCode.TOO_MANY_MESSAGES, f"Message flood: this session sent {limit}.", segment=self.segment)

    def _on_text(self, text: str) -> None:
        message = parse_text_frame(text)
        if isinstance(message, Configure):
            self.config = message.config
            self.fe.to_sequencer({"op": "config", "sid": self.sid, "config": self._config_message()})
            self._emit("session.updated", self.config.to_wire())
        elif isinstance(message, CloseRequest):
            self.begin_drain("client_shutdown")
        elif isinstance(message, ProtocolError):
            self._error(message.code, message.message)

    async def _on_binary(self, data: bytes) -> None:
        index = self.segment
        self.segment += 1
        self.fe.metrics.inc("bytes_received_total", len(data))
        if len(data) > self.cfg.max_segment_size_bytes:
            self._fatal(ErrorCode.SEGMENT_TOO_LARGE,
                        f"Binary frame of {len(data)} bytes is over max_segment_size_bytes "
                        f"({self.cfg.max_segment_size_bytes}).", segment=index)
            return
        if self.state != "open" or not data:
            return  # after session.close, media is refused; empty frames carry nothing
        if self._credential_revoked():
            self._fatal(CREDENTIAL_REVOKED, "The client token of this session was revoked.", segment=index,
                        close_code=1008)
            return
        self.bytes_in += len(data)
        if self.token is not None and self.token.max_bytes is not None and self.bytes_in > self.token.max_bytes:
            self.begin_drain("max_duration", ErrorCode.MAX_DURATION,
                             f"The client token's limit of {self.token.max_bytes} bytes per session was reached.")
            return
        self.last_media = time.monotonic()
        self.pending += data
        self.pending_segment = index
        self.ingest_wakeup.set()
        if self._ingest_task is None:
            self._ingest_task = asyncio.create_task(self._ingest_loop())
        # Socket backpressure: stop reading while too many undecoded bytes wait. Decoding itself
        # is paced by the analysis frontier (see _pump), so decoded media stays bounded too.
        while len(self.pending) > self.cfg.max_buffered_bytes and self.state == "open":
            self.ingest_room.clear()
            await self.ingest_room.wait()

    async def _ingest_loop(self) -> None:
        """Feed what arrived (coalesced: any split costs the same) and decode what the frontier allows."""
        while self.state in ("open", "closing"):
            await self.ingest_wakeup.wait()
            self.ingest_wakeup.clear()
            try:
                async with self.media_lock:
                    await self._ingest_pending()
            except Exception:  # noqa: BLE001 - a bug in ingest ends this session only, with ih1001
                log.exception("ingest failed")
                self.internal_failure("Internal failure while ingesting this session's media.")
            self.ingest_room.set()

    async def _ingest_pending(self) -> None:
        while self.pending and self.state in ("open", "closing"):
            data, segment = bytes(self.pending), self.pending_segment
            self.pending.clear()
            self.ingest_room.set()
            try:
                await self._in_thread(self.pipeline.feed, data)
                await self._pump()
            except IngestError as exc:
                self._fatal(exc.code, exc.message, segment=segment)
            except OSError as exc:  # e.g. /dev/shm full when the ring is created at the first media
                logs.log(log, logging.ERROR, "media ring unavailable", session=self.sid, error=str(exc))
                self.internal_failure("The server could not allocate shared memory for this session's media.")

    async def _in_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.fe.decode_pool, fn, *args)

    async def _pump(self) -> None:
        """Decode what the analysis frontier allows; wait (not reading the socket) while it is behind."""
        while self.state in ("open", "closing") and not self.budget_reached:
            limit = self.frontier + self.cfg.backpressure_seconds
            if self.media_budget is not None:
                limit = min(limit, self.media_budget)  # never decode past the credential's budget
            result = await self._in_thread(self.pipeline.pump, limit)
            self._warnings(result.warnings)
            self._announce(result.until)
            if not result.backlog:
                return
            if self.media_budget is not None and limit >= self.media_budget:
                self._budget_exhausted()
                return
            self.frontier_moved.clear()
            try:
                await asyncio.wait_for(self.frontier_moved.wait(), timeout=1.0)
            except TimeoutError:
                pass
            self.last_media = time.monotonic()

    def _announce(self, until: float) -> None:
        if until > self.sent_until:
            self.sent_until = until
            self.fe.to_sequencer({"op": "media", "sid": self.sid, "until": until})

    def _budget_exhausted(self) -> None:
        """Media reached the budget left at the start: no more is decoded; the session ends as max_duration."""
        self.budget_reached = True
        self.begin_drain("max_duration")  # a session already closing is converted in _drain

    def _credential_revoked(self) -> bool:
        if self.token is None:
            return False
        if self.fe.credentials.is_revoked(self.token.token_id):
            return True
        key = self.fe.keys.get(self.token.key_id)
        return key is None or key.revoked

    def _warnings(self, warnings: list[IngestError]) -> None:
        for w in warnings:
            key = f"{w.code}:{w.message}"
            if key not in self.warned:
                self.warned.add(key)
                self._error(w.code, w.message)

    # -- closing --------------------------------------------------------------------------
    def begin_drain(self, reason: str, code: str | None = None, message: str | None = None) -> None:
        if self.state != "open":
            return
        self.state = "closing"
        self.ingest_room.set()
        if reason == "server_shutdown":
            self.final_close_code = 1001  # going away
        if code is not None:
            self._error(code, message or "")
        self._drain_task = asyncio.create_task(self._drain(reason))

    async def _drain(self, reason: str) -> None:
        self._emit("session.closing", {"max_drain_seconds": self.cfg.max_drain_seconds})
        try:
            async with self.media_lock:
                await self._ingest_pending()
                await self._pump()
                if self.state != "closing":
                    return
                if self.budget_reached:
                    reason = "max_duration"
                    self._error(ErrorCode.MAX_DURATION, f"The credential's video-seconds budget "
                                f"({self.media_budget:.1f} s left when this session started) is used up.")
                    self.ingest_room.set()
                    truncated = None
                else:
                    result = await self._in_thread(self.pipeline.finish)
                    self._warnings(result.warnings)
                    self._announce(result.until)
                    # a client that closes inside an element sent a truncated stream; when the server
                    # cuts the session (idle, max duration, shutdown) a partial tail is expected
                    truncated = self.pipeline.decoder.truncated
                if truncated and reason == "client_shutdown":
                    self.final_close_code = 1007
                    self._error(ErrorCode.MALFORMED_MEDIA, "The stream ended inside a WebM element (truncated stream).")
        except IngestError as exc:
            self.final_close_code = close_code_for(exc.code) or 1007
            self._error(exc.code, exc.message)
        self.fe.to_sequencer({"op": "close", "sid": self.sid, "until": self.sent_until, "reason": reason})
        try:
            await asyncio.wait_for(self.ended_sent.wait(), timeout=self.cfg.max_drain_seconds)
        except TimeoutError:
            self.internal_failure("The session could not be drained in time.")

    def _fatal(self, code: str, message: str, segment: int | None = None, close_code: int | None = None) -> None:
        """An error that ends the session at once (its close code comes from the error table)."""
        if self.state in ("ended", "failed", "aborted"):
            return
        self._error(code, message, segment)
        self.state = "failed"
        self.ingest_room.set()
        self._abort_analysis()
        self.outbox.put_nowait((_CLOSE, close_code or close_code_for(code) or 1011, code))

    def internal_failure(self, message: str) -> None:
        self._fatal(ErrorCode.INTERNAL, message)

    def _abort_analysis(self) -> None:
        if not self.fe.to_sequencer({"op": "abort", "sid": self.sid, "reason": "error"}):
            self.implicit_recorded.set()

    # -- outgoing -------------------------------------------------------------------------------
    def deliver(self, events: list[dict], frontier: float | None, final: bool = False) -> None:
        """Events from the sequencer, already in media order."""
        for ev in events:
            self._emit(ev["type"], ev["data"], t=ev["t"])
            if ev["type"] == "session.ended":
                self._bill(ev["data"].get("billed_seconds"))
        if frontier is not None and frontier > self.frontier:
            self.frontier = frontier
            self.frontier_moved.set()
        if final:
            self.outbox.put_nowait((_CLOSE, self.final_close_code, "session ended"))

    def _bill(self, seconds: float | None) -> None:
        if self.key is not None:
            self.fe.bill_usage(self.key.key_id, self.token.token_id if self.token else None, seconds)

    def record_implicit(self, events: list[dict], billed_seconds: float | None = None) -> None:
        """Implicit signal ends at an abrupt end: stored in the timeline, not sent."""
        self._bill(billed_seconds)
        for ev in events:
            envelope = build_envelope(ev["type"], ev["data"], t=ev["t"], correlation_id=self.correlation_id)
            envelope["implicit"] = True
            self._record(envelope)
        self.implicit_recorded.set()

    def _error(self, code: str, message: str, segment: int | None = None) -> None:
        self.fe.metrics.inc(f'errors_total{{code="{code}"}}')
        self._emit("error", error_data(code, message, segment))

    def _emit(self, event_type: str, data: dict, t: float | None = None) -> None:
        envelope = build_envelope(event_type, data, t=self.sent_until if t is None else t,
                                  correlation_id=self.correlation_id)
        self.outbox.put_nowait(envelope)

    def _record(self, envelope: dict) -> None:
        if self.timeline is not None and not self.timeline.closed:
            try:
                self.timeline.write(orjson.dumps(envelope) + b"\n")
            except OSError as exc:  # a full disk loses the timeline, never the session or its billing
                logs.log(log, logging.ERROR, "timeline write failed; timeline disabled", session=self.sid,
                         error=str(exc))
                self._close_timeline()

    def _close_timeline(self) -> None:
        try:
            self.timeline.close()
        except OSError:
            pass

    def _sync_timeline(self) -> None:
        if self.timeline.closed:
            return
        try:
            self.timeline.flush()
            os.fsync(self.timeline.fileno())
        except OSError as exc:
            logs.log(log, logging.ERROR, "timeline flush failed", session=self.sid, error=str(exc))
            self._close_timeline()

    async def _sender(self) -> None:
        while True:
            item = await self.outbox.get()
            if isinstance(item, tuple) and item[0] is _CLOSE:
                if self.state in ("open", "closing"):
                    self.state = "ended"
                self.ended_sent.set()
                try:
                    await self.ws.close(item[1], item[2][:120])
                except ConnectionClosed:
                    pass
                return
            if self.sdk_client and not _sdk_understands(item):
                self._record({**item, "withheld": "the official SDK cannot parse this reason"})
                continue
            self._record(item)
            if item["type"] == "session.ended" and self.timeline is not None:
                await self._in_thread(self._sync_timeline)  # the timeline is complete before the client hears
            try:
                await asyncio.wait_for(self.ws.send(encode(item)), timeout=self.cfg.slow_reader_seconds)
            except ConnectionClosed:
                pass
            except TimeoutError:
                await self._cut_slow_reader()
                return

    async def _cut_slow_reader(self) -> None:
        """A client that stops reading events is cut off; its unsent events stay bounded."""
        logs.log(log, logging.WARNING, "slow reader cut off", session=self.sid,
                 pending_events=self.outbox.qsize(), after_s=self.cfg.slow_reader_seconds)
        self.fe.metrics.inc("slow_readers_total")
        if self.state in ("open", "closing"):
            self.state = "failed"
            self._abort_analysis()
        self.ingest_room.set()
        self.ended_sent.set()
        try:
            await asyncio.wait_for(self.ws.close(1008, "client is not reading events"), timeout=2.0)
        except (TimeoutError, ConnectionClosed):
            pass
        self.ws.transport.abort()

    async def _cleanup(self, sender: asyncio.Task | None) -> None:
        if self.state in ("open", "closing"):
            # abrupt disconnect: cancel in-flight analysis; signals end implicitly (timeline only)
            self.state = "aborted"
            self._abort_analysis()
            self.outbox.put_nowait((_CLOSE, 1000, ""))
        elif self.state == "failed":
            pass
        else:
            self.implicit_recorded.set()
        for task in (self._drain_task, self._ingest_task):
            if task is not None and not task.done():
                task.cancel()
        self.ingest_room.set()
        try:
            await asyncio.wait_for(self.implicit_recorded.wait(), timeout=3.0)
        except TimeoutError:
            pass
        if sender is not None:
            try:
                await asyncio.wait_for(sender, timeout=5.0)
            except (TimeoutError, asyncio.CancelledError):
                sender.cancel()
        async with self.media_lock:
            if self.pipeline is not None:
                await self._in_thread(self.pipeline.close)
        if self.timeline is not None:
            self._close_timeline()
        self.fe.unregister(self)
        if self.admitted:
            await self._in_thread(self.fe.credentials.release, self.sid)
        self.done.set()
        logs.log(log, logging.INFO, "session closed", session=self.sid, state=self.state)


def _min_cap(*caps: int | None) -> int:
    return int(min(c for c in caps if c))


SDK_QUERY_PARAM = "ih_sdk"
SDK_DEGRADED_REASONS = frozenset({"video_gap"})  # interhumanai 1.3.x: CoverageDegradedData.reason


def _is_official_sdk(ws) -> bool:
    request = getattr(ws, "request", None)
    query = urlsplit(request.path).query if request is not None else ""
    return SDK_QUERY_PARAM in parse_qs(query)


def _sdk_understands(envelope: dict) -> bool:
    if envelope.get("type") != "coverage.degraded":
        return True
    return envelope.get("data", {}).get("reason") in SDK_DEGRADED_REASONS
