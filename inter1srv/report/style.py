"""Colours and labels shared by the PNG and the HTML report."""

from __future__ import annotations

BAND_COLOURS = {"high": "#1f4e79", "medium": "#3f87c4", "low": "#9cc3e4"}
ENGAGEMENT_COLOURS = {"engaged": "#2e8b57", "neutral": "#b8b8b8", "disengaged": "#d9534f"}
CQI_COLOURS = {
    "quality_index": "#111111",
    "clarity": "#1f77b4",
    "authority": "#9467bd",
    "energy": "#ff7f0e",
    "rapport": "#2ca02c",
    "learning": "#8c564b",
}
DROPPED_COLOUR = "#7f7f7f"
DEGRADED_COLOUR = "#f2d16b"


def band_alpha(score: float) -> float:
    """Opacity from the probability score: faint near 0.5, solid near 1."""
    return max(0.5, min(1.0, 0.5 + 0.5 * (score - 0.5) / 0.5))


def fmt_span(start: float, end: float | None) -> str:
    return f"{start:.1f}-{end:.1f} s" if end is not None else f"{start:.1f} s-"
