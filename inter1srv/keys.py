"""API keys: created by the CLI, stored hashed under the data dir, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

KEY_PREFIX = "i1s_"


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    name: str
    sha256: str
    created_at: float
    revoked: bool = False


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


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
        self._records = [KeyRecord(**r) for r in raw.get("keys", [])]
        self._mtime = mtime

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"keys": [asdict(r) for r in self._records]}, option=orjson.OPT_INDENT_2))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._mtime = None

    def create(self, name: str) -> tuple[KeyRecord, str]:
        """Make a new key; the secret is returned once and never stored."""
        self._load()
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(key_id="key_" + secrets.token_hex(6), name=name, sha256=_hash(secret), created_at=time.time())
        self._records.append(record)
        self._save()
        return record, secret

    def list(self) -> list[KeyRecord]:
        self._load()
        return list(self._records)

    def revoke(self, key_id_or_name: str) -> bool:
        self._load()
        changed = False
        for i, r in enumerate(self._records):
            if key_id_or_name in (r.key_id, r.name) and not r.revoked:
                self._records[i] = KeyRecord(r.key_id, r.name, r.sha256, r.created_at, True)
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
