"""JSON answers of the plain-HTTP API (tokens, upload): errors in the shape the official SDK parses."""

from __future__ import annotations

import uuid

from .http import HttpResponse

BAD_REQUEST = "ih4001"
UNAUTHORIZED = "ih1002"
TOO_LARGE = "ih4013"
UNSUPPORTED_MEDIA = "ih4015"
UNDECODABLE_MEDIA = "ih5004"
TOO_SHORT = "ih4022"
NO_CAPACITY = "ih1003"
NOT_FOUND = "ih4004"
CREDENTIAL_REVOKED = "ih1002"  # on a live session: its client token was revoked (then close 1008)


def api_error(status: int, code: str, message: str, correlation_id: str | None = None) -> HttpResponse:
    """``{"error_id", "message", "correlation_id", "link", "error": {"code", "message"}}``."""
    response = HttpResponse.json(status, {
        "error_id": code,
        "message": message,
        "correlation_id": correlation_id or str(uuid.uuid4()),
        "link": None,
        "error": {"code": code, "message": message},
    })
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="inter1srv"'
    return response


def bearer(headers: dict[str, str]) -> str | None:
    """The Bearer credential of a plain HTTP request (lower-case header names)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None
