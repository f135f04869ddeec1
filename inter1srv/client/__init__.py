"""Python client of the Inter-1 Streaming API: typed events, an async session, file streaming.

    from inter1srv.client import connect

    async with connect("ws://127.0.0.1:8080/v1/stream/analyze", key) as session:
        await session.wait_ready()
        await session.send(webm_bytes)
        result = await session.close()
        for event in [e async for e in session]:
            print(describe(event))
"""

from .chunker import Chunk, even_chunks, webm_chunks
from .events import (
    EVENT_CLASSES,
    ConversationQualityUpdated,
    CoverageDegraded,
    CoverageDropped,
    CqiWindow,
    Cue,
    EngagementUpdated,
    ErrorEvent,
    Event,
    FeedbackGenerated,
    Range,
    SessionClosing,
    SessionEnded,
    SessionReady,
    SessionUpdated,
    SignalDetected,
    SignalEnded,
    SignalUpdated,
    UnknownEvent,
    parse_event,
)
from .format import describe
from .media import PreparedMedia, prepare
from .session import (
    DEFAULT_URL,
    AuthenticationError,
    ClientError,
    CloseResult,
    SessionClosedError,
    SessionRefused,
    StreamSession,
    connect,
)

__all__ = [
    "DEFAULT_URL", "EVENT_CLASSES", "AuthenticationError", "Chunk", "ClientError", "CloseResult",
    "ConversationQualityUpdated", "CoverageDegraded", "CoverageDropped", "CqiWindow", "Cue", "EngagementUpdated",
    "ErrorEvent", "Event", "FeedbackGenerated", "PreparedMedia", "Range", "SessionClosedError", "SessionClosing",
    "SessionEnded", "SessionReady", "SessionRefused", "SessionUpdated", "SignalDetected", "SignalEnded",
    "SignalUpdated", "StreamSession", "UnknownEvent", "connect", "describe", "even_chunks", "parse_event",
    "prepare", "webm_chunks",
]
