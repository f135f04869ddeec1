"""Parsing of client text frames (sans-I/O).

A text frame is either a config (two shapes), a graceful close, or an error
the session survives (``ih6001`` for a bad config, ``ih4000`` for anything
unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from .constants import (
    ACCEPTED_INCLUDE_VALUES,
    GOAL_DIMENSIONS,
    INCLUDE_BOTH_ALIAS,
    INCLUDE_FEEDBACK,
    INCLUDE_OVERALL,
    INCLUDE_TIMELINE,
    ErrorCode,
)


@dataclass(frozen=True)
class SessionConfig:
    """The config in force: official include flags and feedback goal dimensions."""

    include: tuple[str, ...] = ()
    goal_dimensions: tuple[str, ...] | None = None  # None: feedback off

    @property
    def feedback_on(self) -> bool:
        return self.goal_dimensions is not None

    def to_wire(self) -> dict:
        return {
            "include": list(self.include),
            "goal_dimensions": list(self.goal_dimensions) if self.goal_dimensions is not None else None,
            "model": None,
        }


@dataclass(frozen=True)
class Configure:
    config: SessionConfig


@dataclass(frozen=True)
class CloseRequest:
    pass


@dataclass(frozen=True)
class ProtocolError:
    code: str
    message: str


ClientMessage = Configure | CloseRequest | ProtocolError

_CONFIG_KEYS = {"include", "goal_dimensions", "type", "model"}


def parse_text_frame(text: str | bytes) -> ClientMessage:
    """Classify one client text frame."""
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        return ProtocolError(ErrorCode.UNKNOWN_MESSAGE, "Text frame is not valid JSON.")
    if not isinstance(payload, dict):
        return ProtocolError(ErrorCode.UNKNOWN_MESSAGE, "Text frame must be a JSON object.")
    kind = payload.get("type")
    if kind == "session.close":
        return CloseRequest()
    if kind is None and not ({"include", "goal_dimensions"} & payload.keys()):
        return ProtocolError(ErrorCode.UNKNOWN_MESSAGE, "Unknown text message: it has no 'type'.")
    if kind not in (None, "session.configure"):
        return ProtocolError(ErrorCode.UNKNOWN_MESSAGE, f"Unknown message type {kind!r}.")
    return parse_config(payload)


def parse_config(payload: dict) -> Configure | ProtocolError:
    """Validate a config object; each config replaces the previous one."""
    unknown = sorted(set(payload) - _CONFIG_KEYS)
    if unknown:
        return ProtocolError(ErrorCode.INVALID_CONFIG, f"Unknown config field(s): {', '.join(unknown)}.")
    if payload.get("model") is not None:
        return ProtocolError(ErrorCode.INVALID_CONFIG, "This endpoint offers no model selection; 'model' must be null.")
    include = payload.get("include") or []
    goals = payload.get("goal_dimensions")
    if not isinstance(include, list) or not all(isinstance(v, str) for v in include):
        return ProtocolError(ErrorCode.INVALID_CONFIG, "'include' must be a list of strings.")
    if goals is not None and (not isinstance(goals, list) or not all(isinstance(v, str) for v in goals)):
        return ProtocolError(ErrorCode.INVALID_CONFIG, "'goal_dimensions' must be a list of strings.")
    bad = sorted(set(include) - ACCEPTED_INCLUDE_VALUES)
    if bad:
        return ProtocolError(ErrorCode.INVALID_CONFIG, f"Unknown include value(s): {', '.join(bad)}.")
    bad_goals = sorted(set(goals or []) - set(GOAL_DIMENSIONS))
    if bad_goals:
        return ProtocolError(ErrorCode.INVALID_CONFIG, f"Unknown goal dimension(s): {', '.join(bad_goals)}.")
    flags = set()
    for value in include:
        if value == INCLUDE_BOTH_ALIAS:
            flags |= {INCLUDE_OVERALL, INCLUDE_TIMELINE}
        elif value != INCLUDE_FEEDBACK:
            flags.add(value)
    ordered_flags = tuple(f for f in (INCLUDE_OVERALL, INCLUDE_TIMELINE) if f in flags)
    goal_dims: tuple[str, ...] | None = None
    if INCLUDE_FEEDBACK in include:
        goal_dims = GOAL_DIMENSIONS
    elif goals:
        goal_dims = tuple(d for d in GOAL_DIMENSIONS if d in goals)
    return Configure(SessionConfig(ordered_flags, goal_dims))
