"""Per-session message-rate limits (token buckets), sans-I/O: time is passed in.

A client that floods the frontend with tiny frames or text messages costs the
frontend's event loop per message (bytes are bounded by socket backpressure,
messages are not), so every session gets a bucket for all messages and a tighter
one for text messages, which each produce an outgoing event.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``rate <= 0`` disables the limit."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float | None = None

    def allow(self, now: float, cost: float = 1.0) -> bool:
        if self.rate <= 0:
            return True
        if self.updated is None:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class MessageRate:
    """Both buckets of one session; :meth:`admit` says which limit, if any, a message breaks."""

    def __init__(self, per_second: float, burst: int, text_per_second: float, text_burst: int) -> None:
        self.messages = TokenBucket(per_second, max(1, burst))
        self.texts = TokenBucket(text_per_second, max(1, text_burst))

    def admit(self, now: float, is_text: bool) -> str | None:
        if not self.messages.allow(now):
            return f"more than {self.messages.rate:g} messages per second (burst {self.messages.burst:g})"
        if is_text and not self.texts.allow(now):
            return f"more than {self.texts.rate:g} text messages per second (burst {self.texts.burst:g})"
        return None
