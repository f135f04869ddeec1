"""``inter1srv report TIMELINE.jsonl``: a picture of one session (PNG and/or self-contained HTML)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .timeline import load


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render a session timeline (JSONL) as PNG and/or HTML")
    p.add_argument("timeline", type=Path, help="DATA_DIR/timelines/SESSION.jsonl or the output of stream --out")
    p.add_argument("--png", type=Path, help="write a PNG here")
    p.add_argument("--html", type=Path, help="write a self-contained HTML page here")


def run(args: argparse.Namespace) -> int:
    try:
        tl = load(args.timeline)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.timeline}: {exc}", file=sys.stderr)
        return 2
    png, html = args.png, args.html
    if png is None and html is None:
        png = args.timeline.with_suffix(".png")
    if png is not None:
        try:
            from .png import render_png

            render_png(tl, png)
        except ImportError:
            print("the PNG report needs matplotlib: pip install matplotlib", file=sys.stderr)
            return 2
        print(f"wrote {png}", file=sys.stderr)
    if html is not None:
        from .html import render_html

        Path(html).write_text(render_html(tl), encoding="utf-8")
        print(f"wrote {html}", file=sys.stderr)
    return 0
