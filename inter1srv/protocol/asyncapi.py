"""AsyncAPI 3.0 document of the streaming protocol (PROTOCOL.md), built from the real enums.

:func:`asyncapi_document` returns a plain dict (JSON-serialisable).  Payload
schemas are JSON Schema (draft-07, AsyncAPI's default) and strict about the
envelope and ``data`` fields this server sends, except ``session.ready``'s
data, which the contract leaves open for extras.  Shared schemas live under
``components/schemas`` and are referenced with ``$ref``.
"""

from __future__ import annotations

from typing import Any

from workers.contract import MODALITIES

from .. import __version__
from .constants import (
    ACCEPTED_INCLUDE_VALUES,
    ENGAGEMENT_STATES,
    GOAL_DIMENSIONS,
    OFFICIAL_INCLUDE_FLAGS,
    PROBABILITY_BANDS,
    SIGNALS,
    STREAM_PATHS,
    ErrorCode,
)

END_REASONS = ("client_shutdown", "max_duration", "idle_timeout", "server_shutdown")
ERROR_CODES = tuple(sorted(v for k, v in vars(ErrorCode).items() if k.isupper()))
CQI_KEYS = ("quality_index", *GOAL_DIMENSIONS)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any], required: list[str] | None = None, *, extra: bool = False,
         description: str | None = None) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": list(properties) if required is None else required,
                              "additionalProperties": extra}
    if description:
        schema["description"] = description
    return schema


NUM = {"type": "number"}
SECONDS = {"type": "number", "minimum": 0, "description": "session media seconds"}
INT = {"type": "integer", "minimum": 0}
STR = {"type": "string"}


def _shared_schemas() -> dict[str, dict]:
    return {
        "Range": _obj({"start": SECONDS, "end": SECONDS}),
        "Ranges": {"type": "array", "items": _ref("Range")},
        "Cue": {
            **_obj({"modality": {"enum": list(MODALITIES)}, "cue": STR, "value": NUM, "start": SECONDS,
                    "end": SECONDS, "rate_hz": NUM, "amplitude": NUM},
                   ["modality", "cue", "value", "start", "end"],
                   description="a measured cue episode cited as evidence; cue-specific measurements may "
                               "follow (e.g. rate_hz and amplitude of head_nod / head_shake)"),
            "additionalProperties": {"type": ["number", "string", "boolean"]},
        },
        "CqiValues": _obj({k: {"type": "number", "minimum": 0, "maximum": 100} for k in CQI_KEYS},
                          description="0-100; quality_index is the mean of the five; 50 means no evidence"),
        "SignalType": {"enum": list(SIGNALS)},
        "ProbabilityBand": {"enum": list(PROBABILITY_BANDS)},
        "IncludeFlag": {"enum": list(OFFICIAL_INCLUDE_FLAGS)},
        "GoalDimension": {"enum": list(GOAL_DIMENSIONS)},
    }


def _signal_data() -> dict:
    return _obj({
        "signal_type": _ref("SignalType"),
        "start": SECONDS,
        "probability": _ref("ProbabilityBand"),
        "probability_score": {"type": "number", "minimum": 0, "maximum": 1},
        "rationale": STR,
        "modality": {"type": "array", "items": {"enum": list(MODALITIES)}},
        "cues": {"type": "array", "items": _ref("Cue")},
    })


def _event_data() -> dict[str, dict]:
    """``data`` schema of every server event type."""
    goals = {"type": ["array", "null"], "items": _ref("GoalDimension")}
    return {
        "session.ready": _obj({
            "session_idle_timeout_seconds": INT,
            "session_max_duration_seconds": INT,
            "max_segment_duration_seconds": {"type": ["number", "null"]},
            "min_segment_size_bytes": INT,
            "max_segment_size_bytes": INT,
            "supported_session_config_options": _obj({
                "include": {"type": "array", "items": _ref("IncludeFlag")},
                "goal_dimensions": {"type": "array", "items": _ref("GoalDimension")},
                "model": {"type": "null"},
            }),
            "session_id": STR,
            "window_seconds": SECONDS,
            "hop_seconds": SECONDS,
            "lead_in_windows": {"type": "boolean",
                                "description": "growing windows [0, hop), [0, 2 hop), ... before the first full one"},
            "signals": {"type": "array", "items": _ref("SignalType")},
            "server_version": STR,
        }, ["session_idle_timeout_seconds", "session_max_duration_seconds", "max_segment_duration_seconds",
            "min_segment_size_bytes", "max_segment_size_bytes", "supported_session_config_options"], extra=True),
        "session.updated": _obj({"include": {"type": "array", "items": _ref("IncludeFlag")},
                                 "goal_dimensions": goals, "model": {"type": "null"}}),
        "signal.detected": _signal_data(),
        "signal.updated": _signal_data(),
        "signal.ended": _obj({"signal_type": _ref("SignalType"), "end": SECONDS}),
        "engagement.updated": _obj({"state": {"enum": list(ENGAGEMENT_STATES)}, "start": SECONDS}),
        "conversation_quality.updated": {
            **_obj({"overall": _ref("CqiValues"),
                    "timeline": {"type": "array", "minItems": 1, "maxItems": 1, "items": _obj(
                        {"start": SECONDS, "end": SECONDS, "values": _ref("CqiValues")})}}, []),
            "minProperties": 1,
            "description": "overall (cumulative, time-weighted) and/or timeline, as the include flags ask",
        },
        "feedback.generated": _obj({"feedback": {"type": "string", "minLength": 1}}),
        "coverage.dropped": _obj({"ranges": _ref("Ranges")}),
        "coverage.degraded": _obj({"ranges": _ref("Ranges"),
                                   "reason": {"type": "string", "examples": ["video_gap", "no_audio"]},
                                   "detail": {"type": "string", "examples": ["no_face"],
                                              "description": "why, where the reason alone does not say "
                                                             "(video_gap with video present but no face)"}},
                                  required=["ranges", "reason"]),
        "session.closing": _obj({"max_drain_seconds": INT}),
        "session.ended": _obj({"reason": {"enum": list(END_REASONS)},
                               "billed_seconds": {"type": "number", "minimum": 0},
                               "analyzed_ranges": _ref("Ranges"), "dropped_ranges": _ref("Ranges")}),
        "error": _obj({"code": {"enum": list(ERROR_CODES)}, "message": STR, "link": {"type": ["string", "null"]},
                       "segment": {"type": ["integer", "null"], "minimum": 0}}),
    }


def _flat_fields(event_type: str) -> tuple[dict[str, dict], list[str]]:
    """Top-level mirrors of ``data`` (PROTOCOL.md, 'Flat fields') and which are always present."""
    if event_type in ("signal.detected", "signal.updated"):
        return ({"signal": _ref("SignalType"), "probability": {"type": "number", "minimum": 0, "maximum": 1},
                 "rationale": STR}, ["signal", "probability", "rationale"])
    if event_type == "signal.ended":
        return {"signal": _ref("SignalType")}, ["signal"]
    if event_type == "engagement.updated":
        return {"state": {"enum": list(ENGAGEMENT_STATES)}}, ["state"]
    if event_type == "conversation_quality.updated":
        return {"scores": _ref("CqiValues")}, []
    if event_type == "feedback.generated":
        return {"text": STR}, ["text"]
    if event_type == "error":
        return {"code": {"enum": list(ERROR_CODES)}, "message": STR}, ["code", "message"]
    return {}, []


SERVER_EVENT_TYPES: tuple[str, ...] = tuple(_event_data())


def _message_name(event_type: str) -> str:
    parts = event_type.replace(".", "_").split("_")
    return parts[0] + "".join(p.title() for p in parts[1:])


def _envelope(event_type: str, data_schema_name: str) -> dict:
    flat, flat_required = _flat_fields(event_type)
    props = {
        "type": {"const": event_type},
        "timestamp": {"type": "string", "format": "date-time",
                      "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"},
        "correlation_id": {"type": "string", "description": "uuid of this connection"},
        "data": _ref(data_schema_name),
        "t": {**SECONDS, "description": "the event's media time; non-decreasing within a session"},
        "implicit": {"type": "boolean", "description": "stored timelines only: a signal ended implicitly at an "
                     "abrupt disconnect (never sent)"},
        **flat,
    }
    return _obj(props, ["type", "timestamp", "correlation_id", "data", "t", *flat_required])


def _client_schemas() -> dict[str, dict]:
    config = _obj({
        "type": {"const": "session.configure"},
        "include": {"type": "array", "items": {"enum": sorted(ACCEPTED_INCLUDE_VALUES)}},
        "goal_dimensions": {"type": "array", "items": _ref("GoalDimension")},
        "model": {"type": "null"},
    }, [], description="each config replaces the previous include and goal dimensions; "
                       "answered by session.updated (unknown fields or values: error ih6001)")
    config["anyOf"] = [{"required": ["type"]}, {"required": ["include"]}, {"required": ["goal_dimensions"]}]
    return {
        "SessionConfigure": config,
        "SessionClose": _obj({"type": {"const": "session.close"}}),
        "Media": {"type": "string", "format": "binary",
                  "description": "the next bytes of ONE continuous WebM stream (VP8/VP9 + Opus), split anywhere"},
    }


def _messages() -> tuple[dict[str, dict], dict[str, dict], list[str], list[str]]:
    schemas: dict[str, dict] = {}
    messages: dict[str, dict] = {}
    server, client = [], []
    for event_type, data in _event_data().items():
        name = _message_name(event_type)
        cap = name[0].upper() + name[1:]
        schemas[f"{cap}Data"] = data
        schemas[f"{cap}Event"] = _envelope(event_type, f"{cap}Data")
        messages[name] = {"name": event_type, "title": event_type, "contentType": "application/json",
                          "summary": f"server event {event_type}", "payload": _ref(f"{cap}Event")}
        server.append(name)
    for name, schema in _client_schemas().items():
        schemas[name] = schema
        msg = name[0].lower() + name[1:]
        binary = name == "Media"
        messages[msg] = {"name": "media" if binary else schema["properties"]["type"]["const"],
                         "title": "binary media frame" if binary else schema["properties"]["type"]["const"],
                         "contentType": "video/webm" if binary else "application/json",
                         "summary": "client message (binary frame)" if binary else "client message (text frame)",
                         "payload": _ref(name)}
        client.append(msg)
    return schemas, messages, server, client


def asyncapi_document(host: str = "127.0.0.1:8080") -> dict:
    """The AsyncAPI 3.0 document of ``WS /v1/stream/analyze`` (and its alias ``/v1/stream``)."""
    schemas, messages, server, client = _messages()
    channel_messages = {m: {"$ref": f"#/components/messages/{m}"} for m in messages}
    channels = {}
    for i, path in enumerate(STREAM_PATHS):
        cid = "analyze" if i == 0 else "analyzeAlias"
        channels[cid] = {
            "address": path,
            "title": "streaming session" if i == 0 else "alias of /v1/stream/analyze",
            "description": "One WebSocket per session. Unknown query parameters are ignored.",
            "messages": channel_messages,
            "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
        }
    operations = {
        "sendEvents": {"action": "send", "channel": {"$ref": "#/channels/analyze"},
                       "summary": "the server sends typed events in non-decreasing media time",
                       "messages": [{"$ref": f"#/channels/analyze/messages/{m}"} for m in server]},
        "receiveClientMessages": {"action": "receive", "channel": {"$ref": "#/channels/analyze"},
                                  "summary": "the server receives media and control messages",
                                  "messages": [{"$ref": f"#/channels/analyze/messages/{m}"} for m in client]},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Inter-1 Streaming API (inter1srv)",
            "version": "1.0.0",
            "x-server-version": __version__,
            "description": "Real-time behavioural analysis over one WebSocket: push WebM, receive signals, "
                           "engagement, conversation quality, feedback, coverage and billing events.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": host, "protocol": "ws", "description": "an inter1srv server",
                              "security": [{"$ref": "#/components/securitySchemes/bearer"},
                                           {"$ref": "#/components/securitySchemes/accessTokenSubprotocol"}]}},
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {**_shared_schemas(), **schemas},
            "messages": messages,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "Authorization: Bearer KEY on the upgrade request"},
                "accessTokenSubprotocol": {
                    "type": "httpApiKey", "in": "header", "name": "Sec-WebSocket-Protocol",
                    "description": "browsers: the subprotocol pair 'access_token, KEY'; the server selects "
                                   "access_token. Bad credentials: HTTP 401, no WebSocket.",
                },
            },
        },
    }
