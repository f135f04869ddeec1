"""Shared fixtures: a unique segment-name root per test, cleaned up afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shm import list_segments, unlink_segment

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root() -> Iterator[str]:
    """A name root no other test (or test run) uses; leftovers are unlinked."""
    r = f"i1st{uuid.uuid4().hex[:12]}."
    yield r
    for name in list_segments(r):
        unlink_segment(name)


@pytest.fixture
def child_env() -> dict[str, str]:
    """Environment for child Python processes that must import ``shm``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env

