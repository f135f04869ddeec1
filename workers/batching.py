"""Batch assembly: up to ``batch_max`` jobs, waiting at most ``wait_s`` from the first job's arrival."""

from __future__ import annotations

import queue
import time
from typing import TypeVar

T = TypeVar("T")


def next_batch(jobs: queue.Queue[T], batch_max: int, wait_s: float, poll_s: float = 0.5) -> list[T]:
    """Block until one job arrives (or ``poll_s`` passes: returns []), then gather more."""
    try:
        first = jobs.get(timeout=poll_s)
    except queue.Empty:
        return []
    batch = [first]
    deadline = time.monotonic() + wait_s
    while len(batch) < batch_max:
        remaining = deadline - time.monotonic()
        try:
            batch.append(jobs.get(timeout=remaining) if remaining > 0 else jobs.get_nowait())
        except queue.Empty:
            break
    return batch
