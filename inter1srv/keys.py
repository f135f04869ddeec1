"""API keys: created by the CLI, stored hashed under the data dir, checked in constant time.

A key may carry caps, stored with it and enforced by the frontend:
``max_concurrent`` (live sessions at once), ``max_session_seconds`` (a session
ends like max duration, ``ih6004``) and ``video_seconds_budget`` (billed media
seconds over the key's lifetime; usage is kept in ``DATA_DIR/usage.sqlite3``).
None means no cap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

KEY_PREFIX = "i1s_"
_UNSET = object()


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    name: str
    sha256: str
    created_at: float
    revoked: bool = False
    max_concurrent: int | None = None
    max_session_seconds: int | None = None
    video_seconds_budget: float | None = None

    @property
    def caps(self) -> dict:
        return {
            "max_concurrent": self.max_concurrent,
            "max_session_seconds": self.max_session_seconds,
            "video_seconds_budget": self.video_seconds_budget,
        }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_caps(max_concurrent, max_session_seconds, video_seconds_budget) -> None:
    for name, value in (("max_concurrent", max_concurrent), ("max_session_seconds", max_session_seconds),
                        ("video_seconds_budget", video_seconds_budget)):
        if value is not None and value is not _UNSET and value <= 0:
            raise ValueError(f"{name} must be positive (or None for no cap)")


class KeyStore:
    """The key file (``keys.json`` in the data dir), re-read when it changes on disk."""

    def __init__(self, data_dir: str | os.PathLike):
        self.path = Path(data_dir) / "keys.json"
        self._records: list[KeyRecord] = []
        self._mtime: float | None = None

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._records, self._mtime = [], None
            return
        if mtime == self._mtime:
            return
        raw = orjson.loads(self.path.read_bytes())
        known = {f.name for f in dataclasses.fields(KeyRecord)}
        self._records = [KeyRecord(**{k: v for k, v in r.items() if k in known}) for r in raw.get("keys", [])]
        self._mtime = mtime

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps({"keys": [asdict(r) for r in self._records]}, option=orjson.OPT_INDENT_2))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._mtime = None

    def create(
        self,
        name: str,
        *,
        max_concurrent: int | None = None,
        max_session_seconds: int | None = None,
        video_seconds_budget: float | None = None,
    ) -> tuple[KeyRecord, str]:
        """Make a new key; the secret is returned once and never stored."""
        _check_caps(max_concurrent, max_session_seconds, video_seconds_budget)
        self._load()
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(
            key_id="key_" + secrets.token_hex(6), name=name, sha256=_hash(secret), created_at=time.time(),
            max_concurrent=max_concurrent, max_session_seconds=max_session_seconds,
            video_seconds_budget=video_seconds_budget,
        )
        self._records.append(record)
        self._save()
        return record, secret

    def list(self) -> list[KeyRecord]:
        self._load()
        return list(self._records)

    def get(self, key_id: str) -> KeyRecord | None:
        """The record with this id (revoked or not)."""
        self._load()
        return next((r for r in self._records if r.key_id == key_id), None)

    def find(self, key_id_or_name: str) -> list[KeyRecord]:
        self._load()
        return [r for r in self._records if key_id_or_name in (r.key_id, r.name)]

    def set_caps(self, key_id_or_name: str, *, max_concurrent=_UNSET, max_session_seconds=_UNSET,
                 video_seconds_budget=_UNSET) -> bool:
        """Change the caps of live keys matching an id or name (None removes a cap; omitted keeps it)."""
        _check_caps(max_concurrent, max_session_seconds, video_seconds_budget)
        self._load()
        changes = {k: v for k, v in (("max_concurrent", max_concurrent), ("max_session_seconds", max_session_seconds),
                                     ("video_seconds_budget", video_seconds_budget)) if v is not _UNSET}
        changed = False
        for i, r in enumerate(self._records):
            if key_id_or_name in (r.key_id, r.name) and not r.revoked:
                self._records[i] = dataclasses.replace(r, **changes)
                changed = True
        if changed:
            self._save()
        return changed

    def revoke(self, key_id_or_name: str) -> bool:
        self._load()
        changed = False
        for i, r in enumerate(self._records):
            if key_id_or_name in (r.key_id, r.name) and not r.revoked:
                self._records[i] = dataclasses.replace(r, revoked=True)
                changed = True
        if changed:
            self._save()
        return changed

    def verify(self, credential: str | None) -> KeyRecord | None:
        """The live key matching ``credential``, compared in constant time against every record."""
        if not credential:
            return None
        self._load()
        digest = _hash(credential)
        found: KeyRecord | None = None
        for record in self._records:
            if hmac.compare_digest(digest, record.sha256) and not record.revoked:
                found = record
        return found
