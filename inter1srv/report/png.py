"""The session picture as a PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from .style import (
    BAND_COLOURS,
    CQI_COLOURS,
    DEGRADED_COLOUR,
    DROPPED_COLOUR,
    ENGAGEMENT_COLOURS,
    band_alpha,
    fmt_span,
)
from .timeline import Timeline

WRAP = 165
ERROR_COLOUR = "#b00000"
MAX_LISTED = 60


def _notes(tl: Timeline) -> list[tuple[str, str]]:
    """(colour, text) lines listed under the plots: each signal's rationale, then feedback."""
    lines: list[tuple[str, str]] = []
    for ep in tl.episodes[:MAX_LISTED]:
        peak = ep.peak
        head = f"{ep.signal}  {fmt_span(ep.start, ep.end)}  {peak.band} (peak {peak.score:.2f})"
        if ep.implicit_end:
            head += "  [ended implicitly]"
        text = f"\u25a0 {head}: {ep.rationale or 'no rationale'}"
        for i, part in enumerate(textwrap.wrap(text, WRAP) or [text]):
            lines.append((BAND_COLOURS[peak.band] if peak.band in BAND_COLOURS else "#333333",
                          part if i == 0 else "      " + part))
    if len(tl.episodes) > MAX_LISTED:
        lines.append(("#333333", f"... and {len(tl.episodes) - MAX_LISTED} more signal episodes"))
    for t, text in tl.feedback[:20]:
        for i, part in enumerate(textwrap.wrap(f"\u25b6 feedback at {t:.1f} s: {text}", WRAP)):
            lines.append(("#555555", part if i == 0 else "      " + part))
    for t, code, message in tl.errors:
        lines.append((ERROR_COLOUR, f"error {code} at {t:.1f} s: {message}"[:WRAP]))
    return lines


def render_png(tl: Timeline, path: str | Path, dpi: int = 110) -> Path:
    """Draw signal bands, the engagement strip, CQI curves, dropped ranges and rationales."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    signals = tl.signals
    notes = _notes(tl)
    # layout in inches, top to bottom: title, signals, engagement, CQI, notes
    blocks = [("gap", 0.75), ("sig", max(0.8, 0.36 * len(signals) + 0.2)), ("gap", 0.5), ("eng", 0.45),
              ("gap", 0.5), ("cqi", 2.6), ("gap", 0.85), ("txt", 0.25 + 0.2 * max(len(notes), 1)), ("gap", 0.15)]
    height = sum(h for _, h in blocks)
    fig = plt.figure(figsize=(14, height))
    rects, top = {}, height
    for name, h in blocks:
        top -= h
        rects[name] = (0.11, top / height, 0.74, h / height)
    ax_sig = fig.add_axes(rects["sig"])
    ax_eng = fig.add_axes(rects["eng"], sharex=ax_sig)
    ax_cqi = fig.add_axes(rects["cqi"], sharex=ax_sig)
    ax_txt = fig.add_axes(rects["txt"])
    end = max(tl.duration, 1.0)

    title = f"Session {tl.session_id or ''}  ·  {tl.duration:.1f} s of media"
    if tl.ended is not None:
        dropped = sum(b - a for a, b in tl.dropped)
        title += f"  ·  billed {tl.ended.billed_seconds or 0:.1f} s  ·  dropped {dropped:.1f} s  ·  {tl.ended.reason}"
    fig.text(0.11, 1 - 0.3 / height, title, fontsize=12, ha="left", va="center")

    # signal bands: one row per signal, colour and opacity by band / score
    for row, signal in enumerate(signals):
        for ep in (e for e in tl.episodes if e.signal == signal):
            for b in ep.bands:
                if b.end > b.start:
                    ax_sig.barh(row, b.end - b.start, left=b.start, height=0.7, color=BAND_COLOURS.get(b.band, "#888"),
                                alpha=band_alpha(b.score), edgecolor="white", linewidth=0.5)
                    if b.end - b.start > end / 40:
                        ax_sig.text((b.start + b.end) / 2, row, b.band, ha="center", va="center", fontsize=7,
                                    color="white" if b.band != "low" else "#1f2f3f")
    ax_sig.set_yticks(range(len(signals)), signals, fontsize=9)
    ax_sig.set_ylim(len(signals) - 0.5, -0.5) if signals else ax_sig.set_ylim(0, 1)
    if not signals:
        ax_sig.text(end / 2, 0.5, "no signal detected", ha="center", va="center", color="#666")
        ax_sig.set_yticks([])
    ax_sig.set_title("signals (colour = probability band, opacity = score)", fontsize=10, loc="left")
    ax_sig.legend(handles=[Patch(color=c, label=b) for b, c in BAND_COLOURS.items()], loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), fontsize=8, title="band", title_fontsize=8, frameon=False)

    # engagement strip
    for a, b, state in tl.engagement:
        ax_eng.axvspan(a, b, color=ENGAGEMENT_COLOURS.get(state, "#ccc"), alpha=0.85)
        if b - a > end / 25:
            ax_eng.text((a + b) / 2, 0.5, state, ha="center", va="center", fontsize=8, color="white")
    ax_eng.set_yticks([])
    ax_eng.set_ylim(0, 1)
    ax_eng.set_title("engagement state", fontsize=10, loc="left")
    ax_eng.legend(handles=[Patch(color=c, label=s) for s, c in ENGAGEMENT_COLOURS.items()], loc="upper left",
                  bbox_to_anchor=(1.01, 1.3), fontsize=8, frameon=False)

    _draw_cqi(ax_cqi, tl)
    for ax in (ax_sig, ax_eng, ax_cqi):
        for a, b in tl.dropped:
            ax.axvspan(a, b, facecolor=DROPPED_COLOUR, alpha=0.3, hatch="//", edgecolor=DROPPED_COLOUR, linewidth=0)
        ax.set_xlim(0, end)
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
    for a, b, _ in tl.degraded:
        ax_cqi.axvspan(a, b, color=DEGRADED_COLOUR, alpha=0.25, linewidth=0)
    plt.setp(ax_sig.get_xticklabels(), visible=False)
    plt.setp(ax_eng.get_xticklabels(), visible=False)
    ax_cqi.set_xlabel("media time (s)")

    ax_txt.axis("off")
    ax_txt.set_title("rationale of each signal, then feedback", fontsize=10, loc="left")
    step = 1.0 / max(len(notes), 1)
    for i, (colour, text) in enumerate(notes):
        y = 1.0 - (i + 0.5) * step
        marker, body = (text[0], text[1:]) if text[:1] in ("\u25a0", "\u25b6") else ("", text)
        if marker:
            ax_txt.text(0.0, y, marker, transform=ax_txt.transAxes, fontsize=9, color=colour, va="center")
        ax_txt.text(0.012, y, body.strip() if marker else body, transform=ax_txt.transAxes, fontsize=8,
                    color=colour if colour == ERROR_COLOUR else "#222222", va="center", ha="left")
    if not notes:
        ax_txt.text(0.0, 0.5, "no signals, no feedback", transform=ax_txt.transAxes, fontsize=9, color="#666")

    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _draw_cqi(ax, tl: Timeline) -> None:
    from matplotlib.lines import Line2D

    for dim, colour in CQI_COLOURS.items():
        xs: list[float] = []
        ys: list[float] = []
        for a, b, values in tl.cqi_windows:
            if dim in values:
                if xs and abs(xs[-1] - a) > 1e-6:
                    xs.append(float("nan"))
                    ys.append(float("nan"))
                xs += [a, b]
                ys += [values[dim], values[dim]]
        if xs:
            main = dim == "quality_index"
            ax.plot(xs, ys, color=colour, linewidth=2.6 if main else 1.3, alpha=1.0 if main else 0.8,
                    label=f"{dim} (window)" if main else dim)
    if tl.cqi_overall:
        ax.plot([t for t, _ in tl.cqi_overall], [v.get("quality_index", 50) for _, v in tl.cqi_overall],
                color=CQI_COLOURS["quality_index"], linestyle="--", linewidth=1.6, marker="o", markersize=3,
                label="quality_index (cumulative)")
    ax.axhline(50, color="#999", linestyle=":", linewidth=0.8)
    ax.set_ylim(-3, 103)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("CQI (0-100)")
    ax.set_title("conversation quality (50 = no evidence)", fontsize=10, loc="left")
    handles, labels = ax.get_legend_handles_labels()
    if tl.dropped:
        handles.append(Line2D([], [], color=DROPPED_COLOUR, linewidth=6, alpha=0.4))
        labels.append("dropped (not analysed)")
    if tl.degraded:
        handles.append(Line2D([], [], color=DEGRADED_COLOUR, linewidth=6, alpha=0.5))
        labels.append("degraded")
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if not tl.cqi_windows and not tl.cqi_overall:
        ax.text(0.5, 0.5, "no CQI in this timeline (ask with include=conversation_quality)", transform=ax.transAxes,
                ha="center", va="center", color="#666")
