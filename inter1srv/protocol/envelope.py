"""Server event envelopes with the flat mirror fields (sans-I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from .constants import CLOSE_CODES, ERROR_LINK


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC with microseconds and a Z."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def flat_fields(event_type: str, data: dict) -> dict:
    """Top-level mirrors of ``data`` for simple clients (PROTOCOL.md, 'Flat fields')."""
    if event_type.startswith("signal."):
        flat = {"signal": data.get("signal_type")}
        if "probability_score" in data:
            flat["probability"] = data["probability_score"]
            flat["rationale"] = data.get("rationale")
        return flat
    if event_type == "engagement.updated":
        return {"state": data.get("state")}
    if event_type == "conversation_quality.updated":
        timeline = data.get("timeline")
        if timeline:
            return {"scores": timeline[-1]["values"]}
        if data.get("overall") is not None:
            return {"scores": data["overall"]}
        return {}
    if event_type == "feedback.generated":
        return {"text": data.get("feedback")}
    if event_type == "error":
        return {"code": data.get("code"), "message": data.get("message")}
    return {}


def build_envelope(event_type: str, data: dict, *, t: float, correlation_id: str) -> dict:
    envelope = {
        "type": event_type,
        "timestamp": utc_timestamp(),
        "correlation_id": correlation_id,
        "data": data,
        "t": round(float(t), 3),
    }
    envelope.update(flat_fields(event_type, data))
    return envelope


def encode(envelope: dict) -> str:
    return orjson.dumps(envelope).decode()


def error_data(code: str, message: str, segment: int | None = None) -> dict:
    return {"code": code, "message": message, "link": ERROR_LINK, "segment": segment}


def close_code_for(code: str) -> int | None:
    return CLOSE_CODES.get(code)
