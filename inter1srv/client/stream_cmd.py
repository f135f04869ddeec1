"""``inter1srv stream FILE``: stream a recording like a live recorder and print the events."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from inter1srv.protocol.constants import ACCEPTED_INCLUDE_VALUES, GOAL_DIMENSIONS

from .chunker import CHUNK_SECONDS, Chunk, webm_chunks
from .events import CoverageDropped, Event
from .format import describe
from .media import prepare
from .progress import Progress
from .session import DEFAULT_URL, ClientError, SessionClosedError, StreamSession, connect

EXIT_OK, EXIT_SESSION_ERROR, EXIT_CANNOT_START = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stream", help="stream a recording to a server and print its events")
    p.add_argument("file", type=Path, help="WebM (VP8/VP9 + Opus) as is; other files are transcoded")
    p.add_argument("--url", default=DEFAULT_URL, help=f"server WebSocket URL (default {DEFAULT_URL})")
    p.add_argument("--key", default=None, help="API key (default: $INTER1SRV_KEY)")
    p.add_argument("--subprotocol", action="store_true", help="send the key as the access_token subprotocol")
    p.add_argument("--pace", choices=["realtime", "fast"], default="realtime",
                   help="realtime: like a live recorder; fast: as fast as the server accepts")
    p.add_argument("--chunk-seconds", type=float, default=CHUNK_SECONDS, help="media per binary frame")
    p.add_argument("--include", nargs="*", default=None, choices=sorted(ACCEPTED_INCLUDE_VALUES), metavar="FLAG",
                   help=f"include flags: {', '.join(sorted(ACCEPTED_INCLUDE_VALUES))}")
    p.add_argument("--goal", nargs="*", default=None, choices=list(GOAL_DIMENSIONS), dest="goal_dimensions",
                   metavar="DIM", help=f"feedback goal dimensions: {', '.join(GOAL_DIMENSIONS)}")
    p.add_argument("--out", type=Path, help="write every event as JSONL (the server's timeline format)")
    p.add_argument("--quiet", action="store_true", help="do not print events")


def run(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("INTER1SRV_KEY", "")
    if not key:
        print("no API key: pass --key or set INTER1SRV_KEY", file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        media = prepare(args.file)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    if media.action != "as-is":
        print(f"{args.file}: {media.action} to WebM ({media.video_codec or 'no video'} + "
              f"{media.audio_codec or 'no audio'})", file=sys.stderr)
    chunks = webm_chunks(media.data, args.chunk_seconds, media.duration)
    try:
        out = open(args.out, "w", encoding="utf-8") if args.out else None
    except OSError as exc:
        print(f"cannot write {args.out}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        return asyncio.run(_stream(args, key, chunks, out))
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START


async def _stream(args: argparse.Namespace, key: str, chunks: list[Chunk], out: TextIO | None) -> int:
    progress = Progress(chunks[-1].media_time if chunks else 0.0)
    try:
        async with connect(args.url, key, subprotocol=args.subprotocol) as session:
            await session.wait_ready()
            if args.include is not None or args.goal_dimensions is not None:
                await session.configure(args.include, args.goal_dimensions)
            sender = asyncio.create_task(_send(session, chunks, args.pace == "realtime", progress))
            _on_interrupt(session, sender)
            async for event in session:
                _show(event, progress, out, quiet=args.quiet)
            await sender
            result = session.result()
    finally:
        if out is not None:
            out.close()
    progress.finish()
    if result.error is not None:
        print(f"session closed by error {result.error.code} (close code {result.code})", file=sys.stderr)
        return EXIT_SESSION_ERROR
    if result.ended is None or result.code != 1000:
        print(f"session ended without session.ended (close code {result.code})", file=sys.stderr)
        return EXIT_SESSION_ERROR
    return EXIT_OK


def _on_interrupt(session: StreamSession, sender: asyncio.Task) -> None:
    """First Ctrl-C: stop sending and close gracefully; second: drop the connection."""
    loop = asyncio.get_running_loop()
    presses = []

    def interrupted() -> None:
        presses.append(1)
        if len(presses) == 1:
            print("\ninterrupted: closing the session (Ctrl-C again to drop it)", file=sys.stderr)
            sender.cancel()
        else:
            loop.create_task(session.abort())

    try:
        loop.add_signal_handler(signal.SIGINT, interrupted)
    except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        pass


async def _send(session: StreamSession, chunks: list[Chunk], realtime: bool, progress: Progress) -> None:
    start = time.monotonic()
    try:
        for chunk in chunks:
            if realtime:
                delay = start + chunk.media_time - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await session.send(chunk.data)
            progress.sent = chunk.media_time
            progress.update()
    except SessionClosedError:
        return
    except asyncio.CancelledError:
        pass  # Ctrl-C: stop sending, close gracefully below
    try:
        await session.close()
    except asyncio.CancelledError:
        pass


def _show(event: Event, progress: Progress, out: TextIO | None, *, quiet: bool) -> None:
    progress.events += 1
    if isinstance(event, CoverageDropped):
        progress.dropped += sum(r.end - r.start for r in event.ranges)
    if out is not None:
        out.write(json.dumps(event.raw, separators=(",", ":")) + "\n")
        out.flush()
    if not quiet:
        progress.clear()
        print(describe(event), flush=True)
    progress.update()
