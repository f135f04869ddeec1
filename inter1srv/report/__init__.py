"""Pictures of a session timeline: PNG (matplotlib) and self-contained HTML (inline SVG)."""

from __future__ import annotations

from pathlib import Path

from .timeline import Band, Episode, Timeline, build, load, load_events

__all__ = ["Band", "Episode", "Timeline", "build", "load", "load_events", "render_html", "render_png"]


def render_png(tl: Timeline, path: str | Path) -> Path:
    """Write the PNG (needs matplotlib, imported only here)."""
    from .png import render_png as _render

    return _render(tl, path)


def render_html(tl: Timeline) -> str:
    """The self-contained HTML page."""
    from .html import render_html as _render

    return _render(tl)
