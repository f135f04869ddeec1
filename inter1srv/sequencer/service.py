"""The sequencer process: owns every session's analysis state.

It turns "media available up to t" notices into windows, hands windows to
workers (pull by credit, across sessions), sheds windows of live sessions under
backlog, merges results strictly in media order into protocol events, and
makes billing durable before ``session.ended``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import signal
import time
from dataclasses import dataclass, field

from inter1srv import logs, sdnotify
from inter1srv.config import ServerConfig
from inter1srv.ipc import AsyncChannel, ChannelClosed
from inter1srv.promtext import RATIO_BUCKETS, SECONDS_BUCKETS, Histogram
from inter1srv.protocol.constants import INCLUDE_OVERALL, INCLUDE_TIMELINE
from inter1srv.sequencer.affinity import WorkerLoad, choose_worker
from workers.contract import RESULT_CONTRACT

from .analysis import SessionAnalysis
from .ledger import open_ledger
from .ranges import as_wire, union
from .schedule import Commit, Dropped, SessionSchedule, Window, WindowState

log = logging.getLogger("inter1srv.sequencer")

FAST_SLACK_SECONDS = 5.0  # media this far ahead of wall time marks a faster-than-real-time client


@dataclass
class SessionState:
    sid: str
    ring: str
    key_id: str | None
    correlation_id: str
    frontend: AsyncChannel
    include: tuple[str, ...] = ()
    goal_dimensions: tuple[str, ...] | None = None
    schedule: SessionSchedule = field(default_factory=SessionSchedule)
    analysis: SessionAnalysis = field(default_factory=SessionAnalysis)
    started_at: float = field(default_factory=time.time)
    first_media_wall: float | None = None
    fast: bool = False
    closing: bool = False
    end_reason: str = "client_shutdown"
    finalizing: bool = False
    pending_rows: list = field(default_factory=list)
    # an upload: its results reach the client only in the final answer, so nothing is billed
    # unless the session finishes (an aborted upload delivered nothing and is billed 0)
    bill_at_end: bool = False
    failed: bool = False  # its analysis raised: aborting, nothing more is emitted
    worker: str | None = None  # the worker its windows go to while it has credit (inter1srv.sequencer.affinity)


@dataclass
class WorkerConn:
    wid: str
    channel: AsyncChannel
    credit: int
    inflight: dict[str, tuple[str, int]] = field(default_factory=dict)
    device_stats: dict = field(default_factory=dict)  # GPU memory / utilisation, when it has one
    progress_at: float = field(default_factory=time.monotonic)  # got work while idle, or last finished a window

    def stalled(self, now: float, after: float) -> bool:
        return bool(self.inflight) and now - self.progress_at > after

    @property
    def free(self) -> int:
        return self.credit - len(self.inflight)


class Sequencer:
    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        self.ledger = open_ledger(cfg.ledger_url, cfg.data_path)
        self.ledger_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ledger")
        self.sessions: dict[str, SessionState] = {}
        self.queue: collections.deque[tuple[str, int]] = collections.deque()
        self.workers: dict[str, WorkerConn] = {}
        self.frontends: set[AsyncChannel] = set()
        self.stats = collections.Counter()
        self.window_ratio = Histogram(RATIO_BUCKETS)  # dispatch-to-result wall time / window media seconds
        self.event_lag = Histogram(SECONDS_BUCKETS)  # emission wall time - arrival of the window's media
        self._last_status = 0.0
        self._stopping = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------
    async def run(self) -> None:
        path = self.cfg.control_socket
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        server = await asyncio.start_unix_server(self._on_connection, path=path, limit=64 * 1024 * 1024)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        sdnotify.notify("READY=1")
        logs.log(log, logging.INFO, "sequencer ready", socket=path)
        ticker = asyncio.create_task(self._tick_loop())
        await self._stopping.wait()
        sdnotify.notify("STOPPING=1")
        ticker.cancel()
        server.close()
        for s in list(self.sessions.values()):
            await self._abort(s, "server_shutdown", notify_frontend=False)
        self.ledger_pool.submit(self.ledger.close).result()
        if os.path.exists(path):
            os.unlink(path)

    async def _tick_loop(self) -> None:
        interval = sdnotify.watchdog_interval()
        last_ping = 0.0
        while True:
            await asyncio.sleep(0.2)
            try:
                self._tick(time.monotonic())
            except Exception:  # noqa: BLE001 - the loop must survive a bad session
                log.exception("tick failed")
            await self._flush_rows()
            self._push_status()
            if interval is not None and time.monotonic() - last_ping >= interval:
                sdnotify.notify("WATCHDOG=1")
                last_ping = time.monotonic()

    def _tick(self, now: float) -> None:
        for s in list(self.sessions.values()):
            if s.finalizing:
                continue
            changed = False
            if not s.fast and not s.closing:
                for _w in s.schedule.choose_sheds(self.cfg.shed_queue_depth):
                    self.stats["windows_shed"] += 1
                    changed = True
                for w in s.schedule.unresolved():
                    # a live window that waited too long (queued or in flight) is given up on,
                    # so the session stays near its live edge; its seconds are reported dropped
                    if w.pending and now - w.ready_at > self.cfg.live_window_deadline_seconds:
                        s.schedule.fail(w.index)
                        self.stats["windows_timed_out"] += 1
                        changed = True
            if changed:
                self._emit(s)

    # -- connections ----------------------------------------------------------
    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        channel = AsyncChannel(reader, writer)
        try:
            hello = await channel.recv()
            if hello.get("role") == "worker":
                await self._serve_worker(channel, hello)
            else:
                await self._serve_frontend(channel)
        except ChannelClosed:
            pass
        except asyncio.CancelledError:
            # shutdown cancels the connection handlers; ending quietly keeps asyncio's stream callback
            # from logging the cancellation as an error on every clean stop
            pass
        finally:
            channel.close()

    async def _serve_frontend(self, channel: AsyncChannel) -> None:
        self.frontends.add(channel)
        channel.send({"op": "status", "workers": len(self.workers)})
        try:
            while True:
                msg = await channel.recv()
                try:
                    await self._on_frontend(channel, msg)
                except Exception:  # noqa: BLE001 - a bad message must not cut every session of this frontend
                    log.exception("frontend message failed", extra={"fields": {"op": msg.get("op")}})
        finally:
            self.frontends.discard(channel)
            for s in [s for s in self.sessions.values() if s.frontend is channel]:
                await self._abort(s, "frontend_lost", notify_frontend=False)

    async def _serve_worker(self, channel: AsyncChannel, hello: dict) -> None:
        if hello.get("contract") != RESULT_CONTRACT:
            reason = (f"worker result contract {hello.get('contract')}, sequencer {RESULT_CONTRACT}: restart the "
                      f"whole server (a reload replaces workers and frontends, not the sequencer)")
            logs.log(log, logging.ERROR, "worker refused", worker=hello.get("wid"), reason=reason)
            channel.send({"op": "refused", "reason": reason})
            return
        # keyed by id and pid: during a reload an old and a new worker share the same id
        worker = WorkerConn(f"{hello.get('wid')}/{hello.get('pid')}", channel, credit=int(hello.get("batch_max", 1)))
        self.workers[worker.wid] = worker
        self._broadcast_status()
        logs.log(log, logging.INFO, "worker joined", worker=worker.wid, device=hello.get("device"))
        self._dispatch()
        try:
            while True:
                msg = await channel.recv()
                try:
                    self._on_worker(worker, msg)
                except Exception:  # noqa: BLE001
                    log.exception("worker message failed")
        finally:
            self.workers.pop(worker.wid, None)
            self.stats["workers_lost"] += 1
            self._broadcast_status()
            self._requeue(worker)
            logs.log(log, logging.WARNING, "worker left", worker=worker.wid, inflight=len(worker.inflight))

    def _broadcast_status(self) -> None:
        message = {"op": "status", "workers": len(self.workers), "stats": self.snapshot()}
        for fe in list(self.frontends):
            try:
                fe.send(message)
            except ChannelClosed:
                pass

    def _push_status(self) -> None:
        now = time.monotonic()
        if now - self._last_status >= 1.0:
            self._last_status = now
            self._broadcast_status()

    def snapshot(self) -> dict:
        """Counters and histograms for /metrics (rendered by the frontend)."""
        return {
            "counters": dict(self.stats),
            "window_ratio": self.window_ratio.snapshot(),
            "event_lag": self.event_lag.snapshot(),
            "sessions": len(self.sessions),
            "queued": len(self.queue),
            "inflight": sum(len(w.inflight) for w in self.workers.values()),
            "devices": {w.wid: w.device_stats for w in self.workers.values() if w.device_stats},
        }

    # -- frontend messages ------------------------------------------------------
    async def _on_frontend(self, channel: AsyncChannel, msg: dict) -> None:
        op = msg.get("op")
        if op == "open":
            s = SessionState(
                sid=msg["sid"],
                ring=msg["ring"],
                key_id=msg.get("key_id"),
                correlation_id=msg.get("correlation_id", msg["sid"]),
                frontend=channel,
                schedule=SessionSchedule(window=self.cfg.window_seconds, hop=self.cfg.hop_seconds,
                                         lead_in=bool(self.cfg.lead_in_windows)),
                bill_at_end=bool(msg.get("bill_at_end")),
            )
            self._configure(s, msg.get("config") or {})
            self.sessions[s.sid] = s
            return
        s = self.sessions.get(msg.get("sid", ""))
        if s is None or s.finalizing:
            return
        if op == "config":
            self._configure(s, msg.get("config") or {})
        elif op == "media":
            self._on_media(s, float(msg["until"]))
        elif op == "close":
            s.closing = True
            s.end_reason = msg.get("reason", "client_shutdown")
            self._enqueue(s, s.schedule.close(float(msg["until"]), time.monotonic()))
            self._emit(s)
        elif op == "abort":
            await self._abort(s, msg.get("reason", "client_disconnect"), notify_frontend=True)

    def _configure(self, s: SessionState, config: dict) -> None:
        s.include = tuple(config.get("include") or ())
        goals = config.get("goal_dimensions")
        s.goal_dimensions = tuple(goals) if goals is not None else None

    def _on_media(self, s: SessionState, until: float) -> None:
        wall = time.monotonic()
        if s.first_media_wall is None:
            s.first_media_wall = wall
        if not s.fast and until > (wall - s.first_media_wall) + FAST_SLACK_SECONDS:
            s.fast = True  # sticky: a client ahead of real time is slowed, never shed
        self._enqueue(s, s.schedule.media_advanced(until, wall))

    def _enqueue(self, s: SessionState, windows: list[Window]) -> None:
        for w in windows:
            self.queue.append((s.sid, w.index))
            self.stats["windows_queued"] += 1
        self._dispatch()

    # -- workers ------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Send queued windows, in order, to their sessions' workers (:mod:`inter1srv.sequencer.affinity`);
        a window whose worker has no credit waits without holding up other sessions' windows."""
        waiting: list[tuple[str, int]] = []
        try:
            self._dispatch_queue(waiting)
        finally:
            self.queue.extendleft(reversed(waiting))

    def _dispatch_queue(self, waiting: list[tuple[str, int]]) -> None:
        now = time.monotonic()
        # a worker that finished nothing for this long is stalled (hung, or far slower than it should be);
        # a busy worker's batch of 8 windows takes seconds, so this stays well above that
        stall = 2 * self.cfg.live_window_deadline_seconds
        pinned = collections.Counter(s.worker for s in self.sessions.values())
        loads = {wid: WorkerLoad(w.free, pinned[wid], not w.inflight, w.stalled(now, stall))
                 for wid, w in self.workers.items()}
        while self.queue and any(load.free > 0 for load in loads.values()):
            sid, index = self.queue.popleft()
            s = self.sessions.get(sid)
            if s is None or s.schedule.windows[index].state != WindowState.QUEUED:
                continue
            w = s.schedule.windows[index]
            wid, pin = choose_worker(s.worker, loads)
            if pin != s.worker:
                if s.worker is not None:
                    self.stats["sessions_repinned"] += 1
                for moved, delta in ((s.worker, -1), (pin, 1)):
                    if moved in loads:
                        loads[moved] = loads[moved]._replace(sessions=loads[moved].sessions + delta)
                s.worker = pin
            if wid is None:
                waiting.append((sid, index))
                continue
            worker = self.workers[wid]
            if wid != pin:
                self.stats["windows_spilled"] += 1
            w.state = WindowState.INFLIGHT
            w.attempts += 1
            w.dispatched_at = now
            job_id = f"{sid}:{index}:{w.attempts}"
            if not worker.inflight:
                worker.progress_at = now  # stalled counts from the moment it has work
            worker.inflight[job_id] = (sid, index)
            loads[wid] = loads[wid]._replace(free=worker.free, idle=False)
            try:
                worker.channel.send(
                    {"op": "job", "id": job_id, "sid": sid, "ring": s.ring, "index": index, "start": w.start, "end": w.end}
                )
            except ChannelClosed:
                worker.inflight.pop(job_id, None)
                w.state = WindowState.QUEUED
                self.queue.appendleft((sid, index))
                self.workers.pop(worker.wid, None)
                loads.pop(worker.wid, None)

    def _on_worker(self, worker: WorkerConn, msg: dict) -> None:
        if msg.get("op") == "stats":
            worker.device_stats = msg.get("stats") or {}
            return
        job = worker.inflight.pop(msg.get("id", ""), None)
        if job is None:
            return
        worker.progress_at = time.monotonic()
        sid, index = job
        s = self.sessions.get(sid)
        if s is not None and not s.finalizing:
            if msg.get("op") == "result":
                self.stats["windows_processed"] += 1
                w = s.schedule.windows[index]
                if w.dispatched_at is not None and w.end > w.start:
                    self.window_ratio.observe((time.monotonic() - w.dispatched_at) / (w.end - w.start))
                if not s.schedule.complete(index, msg["result"]):
                    self.stats["late_results"] += 1
            else:
                self.stats["windows_failed"] += 1
                w = s.schedule.windows[index]
                retry = msg.get("retryable", False) and w.attempts < self.cfg.window_max_attempts
                if retry and w.state == WindowState.INFLIGHT:
                    w.state = WindowState.QUEUED
                    self.queue.appendleft((sid, index))
                else:
                    s.schedule.fail(index)
            self._emit(s)
        self._dispatch()

    def _requeue(self, worker: WorkerConn) -> None:
        """A worker died: retry its windows (or drop them after the last attempt)."""
        touched = set()
        for sid, index in reversed(list(worker.inflight.values())):
            s = self.sessions.get(sid)
            if s is None or s.finalizing:
                continue
            w = s.schedule.windows[index]
            if w.state != WindowState.INFLIGHT:
                continue
            if w.attempts < self.cfg.window_max_attempts:
                w.state = WindowState.QUEUED
                self.queue.appendleft((sid, index))
            else:
                s.schedule.fail(index)
            touched.add(sid)
        worker.inflight.clear()
        for sid in touched:
            if sid in self.sessions:
                self._emit(self.sessions[sid])
        self._dispatch()

    # -- emission -------------------------------------------------------------------
    def _emit(self, s: SessionState) -> None:
        """Emit what became ready; a failure here ends this session only (ih1001), never the others."""
        if s.failed:
            return  # its abort is under way; results still arriving for it are ignored
        try:
            self._emit_ready(s)
        except Exception:  # noqa: BLE001 - one session's analysis bug must not take down its neighbours
            s.failed = True
            log.exception("session analysis failed")
            self.stats["sessions_failed"] += 1
            self._send(s, {"op": "failed", "sid": s.sid, "message": "Internal failure while analysing this session."})
            asyncio.get_running_loop().create_task(self._abort(s, "internal_error", notify_frontend=True))

    def _emit_ready(self, s: SessionState) -> None:
        events: list[dict] = []
        for item in s.schedule.resolve():
            if isinstance(item, Dropped):
                self.stats["dropped_seconds"] += item.end - item.start
                events.extend(_event(*_unpack(ev)) for ev in s.analysis.interrupt())
                events.append(_event("coverage.dropped", item.start, {"ranges": as_wire([(item.start, item.end)])}))
            elif isinstance(item, Commit):
                events.extend(self._commit(s, item))
        if events:
            self._send(s, {"op": "events", "sid": s.sid, "events": events, "frontier": s.schedule.frontier})
        if s.closing and s.schedule.finished and not s.finalizing:
            s.finalizing = True
            asyncio.get_running_loop().create_task(self._finalize(s))

    def _commit(self, s: SessionState, item: Commit) -> list[dict]:
        w, result = item.window, item.window.result or {}
        s.pending_rows.append((s.sid, w.index, w.start, w.end, s.key_id))
        self.stats["windows_delivered"] += 1
        self.stats["billed_seconds_delivered"] += max(0.0, item.end - item.start)
        self.event_lag.observe(max(0.0, time.monotonic() - w.media_arrived_at))
        out: list[dict] = []
        for ev in s.analysis.commit(result, item.start, item.end, feedback_dimensions=_list(s.goal_dimensions)):
            etype, t, data = _unpack(ev)
            if etype == "conversation_quality.updated":
                data = {
                    k: v
                    for k, v in data.items()
                    if (k == "overall" and INCLUDE_OVERALL in s.include) or (k == "timeline" and INCLUDE_TIMELINE in s.include)
                }
                if not data:
                    continue
            out.append(_event(etype, t, data))
        for degraded in result.get("degraded", []):
            ranges = [(max(a, item.start), min(b, item.end)) for a, b in degraded.get("ranges", [])]
            ranges = [r for r in ranges if r[1] > r[0]]
            if ranges:
                data = {"ranges": as_wire(ranges), "reason": degraded["reason"]}
                if degraded.get("detail"):
                    data["detail"] = degraded["detail"]  # e.g. video_gap because no face was in view
                out.append(_event("coverage.degraded", ranges[0][0], data))
        out.sort(key=lambda e: e["t"])
        return out

    def _send(self, s: SessionState, message: dict) -> None:
        try:
            s.frontend.send(message)
        except ChannelClosed:
            pass

    async def _flush_rows(self) -> None:
        """Make delivered windows durable; on failure (a full disk) keep them and retry next tick."""
        taken = [(s, s.pending_rows) for s in self.sessions.values() if s.pending_rows and not s.bill_at_end]
        if not taken:
            return
        for s, _ in taken:
            s.pending_rows = []
        try:
            rows = [r for _, batch in taken for r in batch]
            await asyncio.get_running_loop().run_in_executor(self.ledger_pool, self.ledger.record_windows, rows)
        except Exception as exc:  # noqa: BLE001
            self.stats["ledger_write_failures"] += 1
            logs.log(log, logging.ERROR, "ledger write failed; will retry", error=str(exc))
            for s, batch in taken:
                s.pending_rows = batch + s.pending_rows

    async def _record(self, s: SessionState, reason: str, *, delivered: bool = True) -> float:
        loop = asyncio.get_running_loop()
        never_delivered = s.bill_at_end and not delivered  # an aborted upload: analysed, not billed
        if never_delivered:
            s.pending_rows = []
        await loop.run_in_executor(self.ledger_pool, self.ledger.record_windows, s.pending_rows)
        s.pending_rows = []
        analyzed = [] if never_delivered else s.schedule.billed_ranges
        return await loop.run_in_executor(
            self.ledger_pool,
            lambda: self.ledger.record_session(
                session_id=s.sid,
                key_id=s.key_id,
                correlation_id=s.correlation_id,
                started_at=s.started_at,
                reason=reason,
                media_seconds=s.schedule.media_end,
                analyzed=analyzed,
                dropped=s.schedule.dropped,
            ),
        )

    async def _finalize(self, s: SessionState) -> None:
        """Graceful end: end active signals, make billing durable, then session.ended."""
        frontier = s.schedule.frontier
        try:
            events = [_event(*_unpack(ev)) for ev in s.analysis.finish(frontier)]
        except Exception:  # noqa: BLE001
            log.exception("signal ends failed")
            events = []
        try:
            billed = await self._record(s, s.end_reason)
        except Exception as exc:  # noqa: BLE001 - a ledger failure must reach the client as ih1001
            log.exception("ledger write failed")
            self._send(s, {"op": "failed", "sid": s.sid, "message": f"billing ledger write failed: {exc}"})
            self._forget(s)
            return
        events.append(
            _event(
                "session.ended",
                max(frontier, s.schedule.media_end),
                {
                    "reason": s.end_reason,
                    "billed_seconds": billed,
                    "analyzed_ranges": as_wire(s.schedule.billed_ranges),
                    "dropped_ranges": as_wire(union(s.schedule.dropped)),
                },
            )
        )
        self._send(s, {"op": "events", "sid": s.sid, "events": events, "frontier": frontier, "final": True})
        self._forget(s)

    async def _abort(self, s: SessionState, reason: str, *, notify_frontend: bool) -> None:
        """Abrupt end: cancel in-flight work, end signals implicitly at the last analysed second."""
        if s.finalizing:
            return
        s.finalizing = True
        s.schedule.cancel_all()
        s.schedule.resolve()
        try:
            implicit = [_event(*_unpack(ev)) for ev in s.analysis.finish(s.schedule.frontier)]
        except Exception:  # noqa: BLE001 - billing must still be recorded
            log.exception("implicit signal ends failed")
            implicit = []
        for ev in implicit:
            ev["implicit"] = True
        try:
            billed = await self._record(s, reason, delivered=False)
        except Exception:  # noqa: BLE001
            log.exception("ledger write failed on abort")
            billed = None
        if notify_frontend:
            self._send(s, {"op": "aborted", "sid": s.sid, "implicit": implicit, "billed_seconds": billed})
        self._forget(s)

    def _forget(self, s: SessionState) -> None:
        self.sessions.pop(s.sid, None)
        for worker in list(self.workers.values()):
            try:
                worker.channel.send({"op": "forget", "ring": s.ring, "sid": s.sid})
            except ChannelClosed:
                pass


def _list(values: tuple[str, ...] | None) -> list[str] | None:
    return list(values) if values is not None else None


def _unpack(ev) -> tuple[str, float, dict]:
    if isinstance(ev, tuple):
        return ev[0], ev[1], ev[2]
    return ev.type, ev.t, ev.data


def _event(etype: str, t: float, data: dict) -> dict:
    return {"type": etype, "t": round(float(t), 3), "data": data}


def main(cfg: ServerConfig) -> None:
    logs.setup("sequencer")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(Sequencer(cfg).run())
