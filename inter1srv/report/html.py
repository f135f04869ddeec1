"""The session picture as one self-contained HTML page: inline SVG, CSS and a little JS, no CDN."""

from __future__ import annotations

from html import escape

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

LEFT, WIDTH, ROW, ENG_H, CQI_H, GAP = 130, 840, 24, 26, 200, 34

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px;margin:0 0 4px} .sub{color:#555;margin-bottom:14px}
svg{width:100%;height:auto;display:block} svg text{font-size:12px;fill:#333}
[data-tip]{cursor:pointer} [data-tip]:hover{stroke:#000;stroke-width:1.2}
#tip{position:fixed;display:none;max-width:460px;background:#fff;border:1px solid #999;border-radius:4px;
 padding:6px 9px;box-shadow:0 2px 8px rgba(0,0,0,.2);pointer-events:none;font-size:13px;white-space:pre-wrap}
.legend span{display:inline-block;margin-right:14px} .sw{display:inline-block;width:12px;height:12px;
 vertical-align:-1px;margin-right:4px;border-radius:2px}
table{border-collapse:collapse;margin-top:10px;width:100%} td,th{border-bottom:1px solid #e3e3e3;padding:4px 6px;
 text-align:left;vertical-align:top} th{background:#f6f6f6} td:nth-child(2),td:nth-child(3){white-space:nowrap} td:nth-child(4){width:65%}
"""

_JS = """
const tip=document.getElementById('tip');
document.querySelectorAll('[data-tip]').forEach(el=>{
 el.addEventListener('mousemove',e=>{tip.textContent=el.dataset.tip;tip.style.display='block';
  const x=Math.min(e.clientX+14,window.innerWidth-tip.offsetWidth-8);tip.style.left=x+'px';
  tip.style.top=(e.clientY+16)+'px';});
 el.addEventListener('mouseleave',()=>{tip.style.display='none';});});
"""


def _tick_step(duration: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800):
        if duration / step <= 12:
            return step
    return 3600


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "", opacity: float = 1.0,
          extra: str = "") -> str:
    t = f' data-tip="{escape(tip)}"' if tip else ""
    title = f"<title>{escape(tip)}</title>" if tip else ""
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" height="{h:.1f}" fill="{fill}" '
            f'fill-opacity="{opacity:.2f}"{t}{extra}>{title}</rect>')


def _svg(tl: Timeline) -> str:
    end = max(tl.duration, 1.0)

    def x(t: float) -> float:
        return LEFT + WIDTH * min(max(t, 0.0), end) / end

    signals = tl.signals
    sig_top = 20
    eng_top = sig_top + ROW * max(len(signals), 1) + GAP
    cqi_top = eng_top + ENG_H + GAP
    height = cqi_top + CQI_H + 40
    out = [f'<svg viewBox="0 0 {LEFT + WIDTH + 20} {height}" xmlns="http://www.w3.org/2000/svg">',
           '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
           f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{DROPPED_COLOUR}" fill-opacity="0.18"/>'
           f'<line x1="0" y1="0" x2="0" y2="6" stroke="{DROPPED_COLOUR}" stroke-width="2"/></pattern></defs>',
           f'<text x="{LEFT}" y="12" font-weight="600">signals</text>']
    step = _tick_step(end)
    t = 0.0
    while t <= end + 1e-9:
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{sig_top}" y2="{cqi_top + CQI_H}" stroke="#eee"/>'
                   f'<text x="{x(t):.1f}" y="{cqi_top + CQI_H + 16}" text-anchor="middle">{t:g}</text>')
        t += step
    out.append(f'<text x="{LEFT + WIDTH / 2}" y="{cqi_top + CQI_H + 34}" text-anchor="middle">media time (s)</text>')
    for row, signal in enumerate(signals):
        y = sig_top + row * ROW
        out.append(f'<text x="{LEFT - 8}" y="{y + ROW * 0.65:.1f}" text-anchor="end">{escape(signal)}</text>')
        for ep in (e for e in tl.episodes if e.signal == signal):
            for b in ep.bands:
                tip = (f"{signal} {fmt_span(b.start, b.end)} · {b.band} ({b.score:.2f})\n"
                       f"{b.rationale or ep.rationale}")
                out.append(_rect(x(b.start), y + 3, x(b.end) - x(b.start), ROW - 6, BAND_COLOURS.get(b.band, "#888"),
                                 tip, band_alpha(b.score), ' class="band"'))
    if not signals:
        out.append(f'<text x="{LEFT + WIDTH / 2}" y="{sig_top + 16}" text-anchor="middle">no signal detected</text>')
    out.append(f'<text x="{LEFT - 8}" y="{eng_top + ENG_H * 0.65:.1f}" text-anchor="end">engagement state</text>')
    for a, b, state in tl.engagement:
        out.append(_rect(x(a), eng_top, x(b) - x(a), ENG_H, ENGAGEMENT_COLOURS.get(state, "#ccc"),
                         f"{state} {fmt_span(a, b)}", 0.9))
    out.extend(_cqi_svg(tl, x, cqi_top))
    for a, b in tl.dropped:
        out.append(_rect(x(a), sig_top, x(b) - x(a), cqi_top + CQI_H - sig_top, "url(#hatch)",
                         f"dropped {fmt_span(a, b)}: never analysed, not billed"))
    for a, b, reason in tl.degraded:
        out.append(_rect(x(a), cqi_top + CQI_H - 6, x(b) - x(a), 6, DEGRADED_COLOUR, f"degraded ({reason}) "
                         f"{fmt_span(a, b)}", 0.9))
    out.append("</svg>")
    return "\n".join(out)


def _cqi_svg(tl: Timeline, x, top: float) -> list[str]:
    def y(v: float) -> float:
        return top + CQI_H * (1 - max(0.0, min(100.0, v)) / 100)

    out = [f'<rect x="{LEFT}" y="{top}" width="{WIDTH}" height="{CQI_H}" fill="none" stroke="#ccc"/>',
           f'<text x="{LEFT}" y="{top - 8}" font-weight="600">conversation quality (50 = no evidence)</text>']
    for v in (0, 50, 100):
        out.append(f'<line x1="{LEFT}" x2="{LEFT + WIDTH}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd" '
                   f'stroke-dasharray="{"3,3" if v == 50 else ""}"/><text x="{LEFT - 8}" y="{y(v) + 4:.1f}" '
                   f'text-anchor="end">{v}</text>')
    for dim, colour in CQI_COLOURS.items():
        pts: list[str] = []
        prev_end: float | None = None
        for a, b, values in tl.cqi_windows:
            if dim in values:
                move = "M" if prev_end is None or abs(prev_end - a) > 1e-6 else "L"
                pts += [f"{move}{x(a):.1f},{y(values[dim]):.1f}", f"L{x(b):.1f},{y(values[dim]):.1f}"]
                prev_end = b
        if pts:
            width = 3 if dim == "quality_index" else 1.5
            out.append(f'<path d="{" ".join(pts)}" fill="none" stroke="{colour}" stroke-width="{width}"/>')
    if tl.cqi_overall:
        d = " ".join(f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v.get('quality_index', 50)):.1f}"
                     for i, (t, v) in enumerate(tl.cqi_overall))
        out.append(f'<path d="{d}" fill="none" stroke="#111" stroke-width="1.6" stroke-dasharray="6,4"/>')
    for (a, b, values), overall in zip(tl.cqi_windows, _overall_at(tl), strict=False):
        tip = f"CQI window {fmt_span(a, b)}\n" + "\n".join(f"{k}: {v:.0f}" for k, v in values.items())
        if overall:
            tip += f"\ncumulative quality_index: {overall.get('quality_index', 50):.0f}"
        out.append(_rect(x(a), top, x(b) - x(a), CQI_H, "#000", tip, 0.0))
    if not tl.cqi_windows and not tl.cqi_overall:
        out.append(f'<text x="{LEFT + WIDTH / 2}" y="{top + CQI_H / 2}" text-anchor="middle">'
                   "no CQI in this timeline (ask with include=conversation_quality)</text>")
    return out


def _overall_at(tl: Timeline) -> list[dict | None]:
    by_t = dict(tl.cqi_overall)
    return [by_t.get(b) for _, b, _ in tl.cqi_windows]


def _legend() -> str:
    def sw(colour: str, label: str, opacity: float = 1.0) -> str:
        return f'<span><i class="sw" style="background:{colour};opacity:{opacity}"></i>{escape(label)}</span>'

    parts = [sw(c, f"{b} band") for b, c in BAND_COLOURS.items()]
    parts += [sw(c, s) for s, c in ENGAGEMENT_COLOURS.items()]
    parts += [sw(c, d if d != "quality_index" else "quality_index (window; dashed: cumulative)")
              for d, c in CQI_COLOURS.items()]
    parts += [sw(DROPPED_COLOUR, "dropped", 0.5), sw(DEGRADED_COLOUR, "degraded")]
    return f'<div class="legend">{"".join(parts)}</div>'


def _tables(tl: Timeline) -> str:
    rows = "".join(
        f"<tr><td>{escape(ep.signal)}</td><td>{fmt_span(ep.start, ep.end)}</td>"
        f"<td>{escape(ep.peak.band)} ({ep.peak.score:.2f})</td><td>{escape(ep.rationale)}"
        f"{' <em>(ended implicitly)</em>' if ep.implicit_end else ''}</td></tr>"
        for ep in tl.episodes
    )
    html = ("<h2>Signals</h2><table><tr><th>signal</th><th>when</th><th>peak band</th><th>rationale</th></tr>"
            f"{rows or '<tr><td colspan=4>none</td></tr>'}</table>")
    if tl.feedback:
        items = "".join(f"<li><b>{t:.1f} s</b> {escape(text)}</li>" for t, text in tl.feedback)
        html += f"<h2>Feedback</h2><ul>{items}</ul>"
    if tl.errors:
        items = "".join(f"<li><b>{escape(code)}</b> at {t:.1f} s: {escape(msg)}</li>" for t, code, msg in tl.errors)
        html += f"<h2>Errors</h2><ul>{items}</ul>"
    return html


def render_html(tl: Timeline) -> str:
    """A standalone page; hover a band, the engagement strip or the CQI chart for details."""
    sub = f"{tl.duration:.1f} s of media"
    if tl.ended is not None:
        dropped = sum(b - a for a, b in tl.dropped)
        sub += f" · billed {tl.ended.billed_seconds or 0:.1f} s · dropped {dropped:.1f} s · {escape(tl.ended.reason or '')}"
    title = f"Session {escape(tl.session_id or '')}"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_CSS}</style></head><body><h1>{title}</h1><div class=\"sub\">{sub} · "
            "hover a band, the engagement strip or the CQI chart for details</div>"
            f"{_svg(tl)}{_legend()}{_tables(tl)}<div id=\"tip\"></div><script>{_JS}</script></body></html>")
