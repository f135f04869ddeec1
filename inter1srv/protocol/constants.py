"""Enumerations and codes of the Inter-1 Streaming API (see PROTOCOL.md)."""

from __future__ import annotations

from workers.contract import CQI_DIMENSIONS, SIGNAL_TYPES

INCLUDE_OVERALL = "conversation_quality_overall"
INCLUDE_TIMELINE = "conversation_quality_timeline"
INCLUDE_BOTH_ALIAS = "conversation_quality"
INCLUDE_FEEDBACK = "feedback"
OFFICIAL_INCLUDE_FLAGS: tuple[str, ...] = (INCLUDE_OVERALL, INCLUDE_TIMELINE)
ACCEPTED_INCLUDE_VALUES: frozenset[str] = frozenset(
    {INCLUDE_OVERALL, INCLUDE_TIMELINE, INCLUDE_BOTH_ALIAS, INCLUDE_FEEDBACK}
)
GOAL_DIMENSIONS: tuple[str, ...] = CQI_DIMENSIONS
SIGNALS: tuple[str, ...] = SIGNAL_TYPES
PROBABILITY_BANDS: tuple[str, ...] = ("high", "medium", "low")
ENGAGEMENT_STATES: tuple[str, ...] = ("engaged", "neutral", "disengaged")
STREAM_PATHS: tuple[str, ...] = ("/v1/stream/analyze", "/v1/stream")


class ErrorCode:
    """Error codes and the close code that follows each (None: session stays open)."""

    INTERNAL = "ih1001"
    CREDENTIAL_REVOKED = "ih1002"
    NO_CAPACITY = "ih1003"
    INVALID_CONFIG = "ih6001"
    SEGMENT_TOO_LARGE = "ih6002"
    IDLE_TIMEOUT = "ih6003"
    MAX_DURATION = "ih6004"
    NO_VIDEO = "ih5001"
    MALFORMED_MEDIA = "ih5004"
    UNKNOWN_MESSAGE = "ih4000"
    TOO_MANY_MESSAGES = "ih4029"  # server extension: a per-session message-rate limit was broken


CLOSE_CODES: dict[str, int | None] = {
    ErrorCode.INTERNAL: 1011,
    ErrorCode.CREDENTIAL_REVOKED: 1008,  # the session's client token (or its key) was revoked
    ErrorCode.NO_CAPACITY: 1013,
    ErrorCode.INVALID_CONFIG: None,
    ErrorCode.SEGMENT_TOO_LARGE: 1009,
    ErrorCode.IDLE_TIMEOUT: 1000,
    ErrorCode.MAX_DURATION: 1000,
    ErrorCode.NO_VIDEO: 1007,  # only when audio is unusable too; else the session stays open
    ErrorCode.MALFORMED_MEDIA: 1007,
    ErrorCode.UNKNOWN_MESSAGE: None,
    ErrorCode.TOO_MANY_MESSAGES: 1008,
}

ERROR_LINK = "https://github.com/inter1srv/inter1srv/blob/main/README.md#errors"
