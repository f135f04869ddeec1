"""``POST /v1/client_tokens`` (mint) and ``POST /v1/client_tokens/revoke``, authenticated with an API key."""

from __future__ import annotations

import logging

import orjson

from inter1srv import logs

from .api import BAD_REQUEST, NOT_FOUND, UNAUTHORIZED, api_error, bearer
from .credentials import DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN, MIN_EXPIRES_IN, TOKEN_PREFIX
from .http import HttpRequest, HttpResponse

log = logging.getLogger("inter1srv.frontend.tokens")

_FIELDS = {"expires_in", "max_duration_seconds", "max_bytes", "max_concurrent", "max_video_seconds", "allowed_origins"}


class BadField(ValueError):
    pass


def _positive(body: dict, name: str, kind: type, default=None):
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise BadField(f"{name} must be a positive {'integer' if kind is int else 'number'} or null.")
    if value <= 0:
        raise BadField(f"{name} must be positive.")
    return kind(value)


def parse_mint_body(raw: bytes) -> dict:
    """The token caps from a mint request's JSON body (empty body: the defaults). Raises BadField."""
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise BadField("The body must be a JSON object.") from exc
    if not isinstance(body, dict):
        raise BadField("The body must be a JSON object.")
    unknown = set(body) - _FIELDS
    if unknown:
        raise BadField(f"Unknown fields: {', '.join(sorted(unknown))}.")
    expires_in = _positive(body, "expires_in", int, DEFAULT_EXPIRES_IN)
    if expires_in is None or not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN:
        raise BadField(f"expires_in must be between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN} seconds.")
    origins = body.get("allowed_origins") or []
    if not isinstance(origins, list) or not all(isinstance(o, str) and o.strip() for o in origins):
        raise BadField("allowed_origins must be a list of origins like \"https://app.example.com\".")
    return {
        "expires_in": expires_in,
        "max_duration_seconds": _positive(body, "max_duration_seconds", int),
        "max_bytes": _positive(body, "max_bytes", int),
        "max_concurrent": _positive(body, "max_concurrent", int, 1) or 1,
        "max_video_seconds": _positive(body, "max_video_seconds", float),
        "allowed_origins": origins,
    }


class ClientTokenRoutes:
    def __init__(self, frontend):
        self.fe = frontend

    def register(self, router) -> None:
        router.add("POST", "/v1/client_tokens", self.mint)
        router.add("POST", "/v1/client_tokens/revoke", self.revoke)

    def _key(self, request: HttpRequest):
        credential = bearer(request.headers)
        if credential is None or credential.startswith(TOKEN_PREFIX):
            return None  # a client token never mints or revokes tokens
        return self.fe.keys.verify(credential)

    async def mint(self, request: HttpRequest) -> HttpResponse:
        key = self._key(request)
        if key is None:
            self.fe.metrics.inc("auth_failures_total")
            return api_error(401, UNAUTHORIZED, "An API key (Authorization: Bearer) is required to mint client tokens.")
        try:
            caps = parse_mint_body(request.body)
        except BadField as exc:
            return api_error(400, BAD_REQUEST, str(exc))
        record, secret = await self.fe.in_thread(lambda: self.fe.credentials.mint(key, **caps))
        logs.log(log, logging.INFO, "client token minted", key_id=key.key_id, token_id=record.token_id)
        return HttpResponse.json(200, {"token": secret, "expires_in": caps["expires_in"], **record.public()})

    async def revoke(self, request: HttpRequest) -> HttpResponse:
        key = self._key(request)
        if key is None:
            self.fe.metrics.inc("auth_failures_total")
            return api_error(401, UNAUTHORIZED, "The API key that minted the token is required to revoke it.")
        try:
            body = orjson.loads(request.body or b"{}")
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not (isinstance(body.get("token"), str) or isinstance(body.get("token_id"), str)):
            return api_error(400, BAD_REQUEST, 'Send {"token": "..."} or {"token_id": "..."}.')
        done = await self.fe.in_thread(lambda: self.fe.credentials.revoke(
            key.key_id, secret=body.get("token"), token_id=body.get("token_id")))
        if not done:
            return api_error(404, NOT_FOUND, "No token minted by this key matches.")
        logs.log(log, logging.INFO, "client token revoked", key_id=key.key_id)
        return HttpResponse.json(200, {"revoked": True})
