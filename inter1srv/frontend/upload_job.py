"""A virtual session for an uploaded file: the same ring, sequencer and workers as a live session.

It registers in ``Frontend.sessions`` so the sequencer's messages reach it
through ``Frontend._route`` (``deliver``, ``record_implicit``,
``internal_failure``), decodes the whole file as fast as the analysis frontier
allows (the sequencer marks it a fast client: slowed, never shed), closes like
``session.close`` and returns every event up to ``session.ended``. It is billed
like any session (the sequencer's ledger, and the credential's usage), but only
when it finishes: a client that disconnects before the answer cancels the job
(the HTTP layer cancels its task) and is billed nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from inter1srv import logs
from inter1srv.ingest.errors import IngestError

from .credentials import Principal
from .pipeline import MediaPipeline, MediaSource

log = logging.getLogger("inter1srv.frontend.upload")


class UploadFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UploadJob:
    def __init__(self, frontend, principal: Principal, source: MediaSource, config: dict):
        self.fe = frontend
        self.cfg = frontend.cfg
        self.principal = principal
        self.source = source
        self.config = config
        self.sid = "upl_" + uuid.uuid4().hex[:20]
        self.correlation_id = str(uuid.uuid4())
        self.events: list[dict] = []
        self.frontier = 0.0
        self.frontier_moved = asyncio.Event()
        self.ended = asyncio.Event()
        self.done = asyncio.Event()
        self.sent_until = 0.0
        self.failure: str | None = None
        self.warnings: list[IngestError] = []
        self.client_gone = False  # set when the HTTP client disconnected before the answer

    # -- what Frontend._route and Frontend.drain call -------------------------------------------
    def deliver(self, events: list[dict], frontier: float | None, final: bool = False) -> None:
        self.events.extend(events)
        for ev in events:
            if ev["type"] == "session.ended":
                self._bill(ev["data"].get("billed_seconds"))
        if frontier is not None and frontier > self.frontier:
            self.frontier = frontier
            self.frontier_moved.set()
        if final:
            self.ended.set()

    def record_implicit(self, events: list[dict], billed_seconds: float | None = None) -> None:
        self._bill(billed_seconds)

    def internal_failure(self, message: str) -> None:
        self.failure = message
        self.ended.set()
        self.frontier_moved.set()

    def begin_drain(self, reason: str, code: str | None = None, message: str | None = None) -> None:
        """Server shutdown: an upload in progress is finished, not cut."""

    def _bill(self, seconds: float | None) -> None:
        token = self.principal.token
        self.fe.bill_usage(self.principal.key.key_id, token.token_id if token else None, seconds)

    # -- the run ----------------------------------------------------------------------------------
    async def run(self) -> list[dict]:
        """Analyse the whole file; the sequencer's events up to ``session.ended``. Raises UploadFailed."""
        self.fe.register(self)
        pipeline: MediaPipeline | None = None
        finished = False
        try:
            pipeline = await self.fe.in_thread(MediaPipeline, self.cfg, self.fe.server_prefix, self.sid, self.source)
            opened = self.fe.to_sequencer({
                "op": "open", "sid": self.sid, "ring": pipeline.ring_name,
                "key_id": self.principal.key.key_id,
                "token_id": self.principal.token.token_id if self.principal.token else None,
                "correlation_id": self.correlation_id, "config": self.config,
                "bill_at_end": True,  # the client gets results only in the answer: bill only if it gets them
            })
            if not opened:
                raise UploadFailed("The analysis sequencer is not available.")
            logs.log(log, logging.INFO, "upload session opened", session=self.sid, key_id=self.principal.key.key_id)
            await self._pump(pipeline)
            result = await self.fe.in_thread(pipeline.finish)
            self.warnings += result.warnings
            self._announce(result.until)
            self.fe.to_sequencer({"op": "close", "sid": self.sid, "until": self.sent_until,
                                  "reason": "client_shutdown"})
            await self.ended.wait()
            finished = self.failure is None
            if self.failure is not None:
                raise UploadFailed(self.failure)
            return self.events
        except asyncio.CancelledError:
            self.client_gone = True  # the HTTP layer cancels the job when its client disconnects
            raise
        finally:
            if not finished and not self.ended.is_set():
                reason = "client_disconnect" if self.client_gone else "error"
                self.fe.to_sequencer({"op": "abort", "sid": self.sid, "reason": reason})
            if pipeline is not None:
                await self.fe.in_thread(pipeline.close)
            self.fe.unregister(self)
            self.done.set()

    async def _pump(self, pipeline: MediaPipeline) -> None:
        while self.failure is None:
            result = await self.fe.in_thread(pipeline.pump, self.frontier + self.cfg.backpressure_seconds)
            self.warnings += result.warnings
            self._announce(result.until)
            if not result.backlog:
                return
            self.frontier_moved.clear()
            try:
                await asyncio.wait_for(self.frontier_moved.wait(), timeout=1.0)
            except TimeoutError:
                pass
        raise UploadFailed(self.failure)

    def _announce(self, until: float) -> None:
        if until > self.sent_until:
            self.sent_until = until
            self.fe.to_sequencer({"op": "media", "sid": self.sid, "until": until})

    @property
    def media_end(self) -> float:
        return self.sent_until
