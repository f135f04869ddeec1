"""Half-open media-time ranges [start, end): union, length, complement."""

from __future__ import annotations

Range = tuple[float, float]
EPS = 1e-6


def union(ranges: list[Range]) -> list[Range]:
    merged: list[Range] = []
    for start, end in sorted(r for r in ranges if r[1] - r[0] > EPS):
        if merged and start <= merged[-1][1] + EPS:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def total(ranges: list[Range]) -> float:
    return sum(end - start for start, end in union(ranges))


def complement(ranges: list[Range], start: float, end: float) -> list[Range]:
    gaps: list[Range] = []
    cursor = start
    for s, e in union(ranges):
        if s > cursor + EPS:
            gaps.append((cursor, min(s, end)))
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if cursor < end - EPS:
        gaps.append((cursor, end))
    return [g for g in gaps if g[1] - g[0] > EPS]


def covers(ranges: list[Range], start: float, end: float) -> bool:
    return not complement(ranges, start, end)


def as_wire(ranges: list[Range]) -> list[dict]:
    return [{"start": round(s, 3), "end": round(e, 3)} for s, e in ranges]
