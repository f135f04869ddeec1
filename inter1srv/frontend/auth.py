"""Credentials on the upgrade request: ``Authorization: Bearer`` or the ``access_token`` subprotocol pair."""

from __future__ import annotations

from websockets.datastructures import Headers

SUBPROTOCOL = "access_token"


def offered_subprotocols(headers: Headers) -> list[str]:
    values: list[str] = []
    for header in headers.get_all("Sec-WebSocket-Protocol"):
        values.extend(v.strip() for v in header.split(",") if v.strip())
    return values


def credential_from(headers: Headers) -> str | None:
    """The presented credential, or None. Keys in the query string are refused by design."""
    auth = headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    protocols = offered_subprotocols(headers)
    if SUBPROTOCOL in protocols:
        i = protocols.index(SUBPROTOCOL)
        if i + 1 < len(protocols):
            return protocols[i + 1]
    return None
