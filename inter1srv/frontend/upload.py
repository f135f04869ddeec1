"""``POST /v1/upload/analyze``: a whole file through the streaming pipeline, one JSON report back.

The form is what the official SDK's ``client.upload.analyze`` sends: the file in
``file``, ``include[]`` and ``goal_dimensions[]`` lists, ``Authorization: Bearer``.
WebM goes through the streaming decoder itself; MP4, MOV and Matroska with other
codecs go through :class:`ContainerSource`. Errors (JSON, SDK shape): 400
``ih4001`` bad form, 401 ``ih1002``, 413 ``ih4013`` too large, 415 ``ih4015``
unsupported container / ``ih5004`` undecodable / ``ih5001`` no usable media,
422 ``ih4022`` shorter than 3 s (or longer than the credential's session cap),
429 ``ih1003`` a credential cap (concurrency, budget), 503 ``ih1003`` no capacity,
500 ``ih1001`` internal failure.
"""

from __future__ import annotations

import logging

from inter1srv import logs
from inter1srv.ingest.decode import AUDIO_CODECS, VIDEO_CODECS
from inter1srv.ingest.errors import NO_VIDEO, IngestError
from inter1srv.protocol.constants import (
    GOAL_DIMENSIONS,
    INCLUDE_BOTH_ALIAS,
    INCLUDE_FEEDBACK,
    INCLUDE_OVERALL,
    INCLUDE_TIMELINE,
)

from . import multipart
from .api import (
    BAD_REQUEST,
    NO_CAPACITY,
    TOO_LARGE,
    TOO_SHORT,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA,
    api_error,
    bearer,
)
from .container import ContainerSource
from .credentials import Principal, Refusal
from .http import HttpRequest, HttpResponse
from .pipeline import MediaSource, new_decoder
from .report import build_report
from .upload_job import UploadFailed, UploadJob

log = logging.getLogger("inter1srv.frontend.upload")
MIN_SECONDS = 3.0
DURATION_SLACK_S = 0.1  # the last frame's duration is not in its timestamp
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


class BadUpload(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def sniff(data: bytes) -> str | None:
    """'ebml' (WebM, Matroska), 'isobmff' (MP4, MOV) or None."""
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "ebml"
    if data[4:8] in _MP4_BOXES:
        return "isobmff"
    return None


def parse_options(form: multipart.Form) -> tuple[set[str], list[str] | None]:
    include = set()
    for value in form.values("include[]", "include"):
        if value == INCLUDE_BOTH_ALIAS:
            include |= {INCLUDE_OVERALL, INCLUDE_TIMELINE}
        elif value in (INCLUDE_OVERALL, INCLUDE_TIMELINE, INCLUDE_FEEDBACK):
            include.add(value)
        else:
            raise BadUpload(400, BAD_REQUEST, f"Unknown include value {value!r}.")
    goals = form.values("goal_dimensions[]", "goal_dimensions")
    for g in goals:
        if g not in GOAL_DIMENSIONS:
            raise BadUpload(400, BAD_REQUEST, f"Unknown goal dimension {g!r} (one of {', '.join(GOAL_DIMENSIONS)}).")
    if INCLUDE_FEEDBACK in include and not goals:
        goals = list(GOAL_DIMENSIONS)
    return include, (list(dict.fromkeys(goals)) or None)


def open_source(cfg, data: bytes) -> tuple[MediaSource, float]:
    """A decoder holding the whole file, and the file's media duration. Raises BadUpload (blocking)."""
    kind = sniff(data)
    if kind is None:
        raise BadUpload(415, UNSUPPORTED_MEDIA, "Unsupported file type: send WebM, MKV, MP4 or MOV.")
    try:
        if kind == "ebml":
            decoder = new_decoder(cfg)
            try:
                decoder.feed(data)
                tracks = decoder.tracks or {}
                streamable = all(t.codec_id in VIDEO_CODECS or t.codec_id in AUDIO_CODECS
                                 for t in tracks.values() if t.kind in ("video", "audio"))
            except IngestError as exc:
                if exc.code != NO_VIDEO:
                    raise
                streamable = False
            if streamable and decoder.queued_until is not None:
                return decoder, decoder.queued_until + DURATION_SLACK_S
            decoder.close()  # Matroska with other codecs (H.264, AAC, ...): the container demuxer
        source = ContainerSource(data, fps=cfg.analysis_fps, width=cfg.analysis_width,
                                 max_height=cfg.analysis_max_height, pixel_format=cfg.ring_pixel_format)
        return source, source.duration
    except IngestError as exc:
        raise BadUpload(415, exc.code, f"The file could not be decoded: {exc.message}") from exc


class UploadRoutes:
    def __init__(self, frontend):
        self.fe = frontend

    def register(self, router) -> None:
        router.add("POST", "/v1/upload/analyze", self.analyze)

    async def analyze(self, request: HttpRequest) -> HttpResponse:
        principal = await self.fe.authenticate(bearer(request.headers), request.headers.get("origin"))
        if principal is None:
            self.fe.metrics.inc("auth_failures_total")
            return api_error(401, UNAUTHORIZED, "Missing, unknown, expired or revoked credential.")
        source = None
        try:
            form = await self._form(request)
            include, goals = parse_options(form)
            data = form.files["file"].data
            source, duration = await self.fe.in_thread(open_source, self.fe.cfg, data)
            self._check_duration(principal, duration)
            if not self.fe.ready or self.fe.capacity_left <= 0:
                raise BadUpload(503, NO_CAPACITY, "No analysis capacity is available right now; try again shortly.")
            return await self._run(principal, source, include, goals, duration)
        except BadUpload as exc:
            if source is not None:
                await self.fe.in_thread(source.close)
            return api_error(exc.status, exc.code, exc.message)

    async def _form(self, request: HttpRequest) -> multipart.Form:
        try:
            form = await self.fe.in_thread(multipart.parse, request.body, request.headers.get("content-type", ""))
        except multipart.MultipartError as exc:
            raise BadUpload(400, BAD_REQUEST, str(exc)) from exc
        if "file" not in form.files or not form.files["file"].data:
            raise BadUpload(400, BAD_REQUEST, "The form has no 'file' part.")
        size = len(form.files["file"].data)
        if size > self.fe.cfg.max_upload_bytes:
            raise BadUpload(413, TOO_LARGE, f"The file is {size} bytes; the limit is {self.fe.cfg.max_upload_bytes}.")
        return form

    @staticmethod
    def _check_duration(principal: Principal, duration: float) -> None:
        if duration < MIN_SECONDS:
            raise BadUpload(422, TOO_SHORT, f"The media is {duration:.2f} s long; at least {MIN_SECONDS:.0f} s needed.")
        caps = [c for c in (principal.key.max_session_seconds,
                            principal.token.max_duration_seconds if principal.token else None) if c]
        if caps and duration > min(caps):
            raise BadUpload(422, TOO_SHORT, f"The media is {duration:.1f} s long; this credential allows "
                                            f"{min(caps)} s per session.")

    async def _run(self, principal: Principal, source: MediaSource, include: set[str], goals: list[str] | None,
                   duration: float) -> HttpResponse:
        config = {"include": [INCLUDE_OVERALL, INCLUDE_TIMELINE], "goal_dimensions": goals}
        job = UploadJob(self.fe, principal, source, config)
        try:
            left = await self.fe.in_thread(self.fe.credentials.admit, job.sid, principal)
        except Refusal as exc:
            raise BadUpload(429, NO_CAPACITY, str(exc)) from exc
        try:
            if left is not None and duration > left:
                raise BadUpload(429, NO_CAPACITY, f"The media is {duration:.1f} s long; this credential's "
                                                  f"video-seconds budget has {left:.1f} s left.")
            events = await job.run()
        except UploadFailed as exc:
            return api_error(500, "ih1001", exc.message, job.correlation_id)
        finally:
            await self.fe.in_thread(self.fe.credentials.release, job.sid)
        ended = next((e["data"] for e in events if e["type"] == "session.ended"), {})
        report = build_report(events, media_end=job.media_end, include=include, goal_dimensions=goals)
        report.update({
            "session_id": job.sid,
            "correlation_id": job.correlation_id,
            "duration_seconds": round(job.media_end, 3),
            "billed_seconds": ended.get("billed_seconds"),
            "dropped_ranges": ended.get("dropped_ranges", []),
            "warnings": [{"code": w.code, "message": w.message} for w in job.warnings],
        })
        logs.log(log, logging.INFO, "upload analysed", session=job.sid, billed=ended.get("billed_seconds"))
        return HttpResponse.json(200, report)
