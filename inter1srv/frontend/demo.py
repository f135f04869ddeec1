"""The browser demo: ``GET /`` (a self-contained page) and ``POST /v1/demo/token``.

On when ``INTER1SRV_DEMO`` is "1" (the default). The page must not hold an API
key, so the server mints its tokens from a dedicated key it keeps in the data
dir (``inter1srv-demo``, capped: 2 live sessions, 10 minutes each). Trade-off:
anyone who can reach the port can start capped demo sessions billed to that key,
so turn the demo off on servers reachable by untrusted clients. Tokens are
minted only for same-origin requests (the Origin's host must be the Host
header), are locked to that origin, expire in 5 minutes and allow one session.
Minting is rate-limited per client address (``DEMO_MINT_PER_MINUTE``) and in all
(``DEMO_MINT_TOTAL_PER_MINUTE``, which bounds the credential store's growth): over
either, 429 ``ih4029``.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlsplit

from inter1srv import logs

from .api import BAD_REQUEST, api_error
from .http import HttpRequest, HttpResponse
from .message_rate import TokenBucket

log = logging.getLogger("inter1srv.frontend.demo")
DEMO_KEY_NAME = "inter1srv-demo"
DEMO_KEY_CAPS = {"max_concurrent": 2, "max_session_seconds": 600}
DEMO_TOKEN_CAPS = {"expires_in": 300, "max_duration_seconds": 600, "max_concurrent": 1}
PAGE = Path(__file__).parent / "static" / "demo.html"
DEMO_MINT_PER_MINUTE = 6  # per client address, burst of as many
DEMO_MINT_TOTAL_PER_MINUTE = 60  # all clients together, burst of as many
MINT_LIMITED = "ih4029"
_TRACKED_PEERS = 10_000


def demo_enabled() -> bool:
    return os.environ.get("INTER1SRV_DEMO", "1").strip().lower() not in ("0", "false", "no", "off", "")


class DemoRoutes:
    def __init__(self, frontend):
        self.fe = frontend
        self._peers: OrderedDict[str, TokenBucket] = OrderedDict()
        self._all = TokenBucket(DEMO_MINT_TOTAL_PER_MINUTE / 60, DEMO_MINT_TOTAL_PER_MINUTE)

    def _mint_allowed(self, peer: str | None) -> bool:
        now = time.monotonic()
        bucket = self._peers.pop(peer or "?", None) or TokenBucket(DEMO_MINT_PER_MINUTE / 60, DEMO_MINT_PER_MINUTE)
        self._peers[peer or "?"] = bucket
        while len(self._peers) > _TRACKED_PEERS:
            self._peers.popitem(last=False)
        return bucket.allow(now) and self._all.allow(now)

    def register(self, router) -> None:
        router.add("GET", "/", self.page)
        router.add("GET", "/demo", self.page)
        router.add("POST", "/v1/demo/token", self.token)

    async def page(self, request: HttpRequest) -> HttpResponse:
        body = await self.fe.in_thread(PAGE.read_bytes)
        return HttpResponse(200, body, "text/html; charset=utf-8", headers={"Cache-Control": "no-store"})

    def _demo_key(self):
        live = [r for r in self.fe.keys.find(DEMO_KEY_NAME) if not r.revoked]
        if live:
            return live[0]
        record, _secret = self.fe.keys.create(DEMO_KEY_NAME, **DEMO_KEY_CAPS)  # the secret is never used
        logs.log(log, logging.INFO, "demo key created", key_id=record.key_id)
        return record

    async def token(self, request: HttpRequest) -> HttpResponse:
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if not origin or urlsplit(origin).netloc.lower() != host.lower():
            return api_error(400, BAD_REQUEST, "Demo tokens are minted only for the demo page's own origin.")
        if not self._mint_allowed(request.peer):
            response = api_error(429, MINT_LIMITED, "Too many demo tokens requested; try again in a minute.")
            response.headers["Retry-After"] = "60"
            return response
        key = await self.fe.in_thread(self._demo_key)
        record, secret = await self.fe.in_thread(
            lambda: self.fe.credentials.mint(key, allowed_origins=[origin], **DEMO_TOKEN_CAPS))
        return HttpResponse.json(200, {"token": secret, **record.public()})
