"""Timelines folded into episodes/strips/curves, rendered as PNG and self-contained HTML."""

import json
import re

import pytest

from inter1srv.cli import main
from inter1srv.protocol.envelope import build_envelope
from inter1srv.report import build, load, render_html, render_png
from inter1srv.report.timeline import load_events

VALUES = {"quality_index": 60.0, "clarity": 70.0, "authority": 55.0, "energy": 65.0, "rapport": 50.0,
          "learning": 50.0}


def _sig(etype, sig, t, band="high", score=0.8, why="because"):
    return (etype, t, {"signal_type": sig, "start": t, "probability": band, "probability_score": score,
                       "rationale": why, "modality": ["paraverbal"], "cues": []})


EVENTS = [
    ("session.ready", 0.0, {"session_id": "sess_t", "session_idle_timeout_seconds": 30}),
    _sig("signal.detected", "confidence", 0.0, "medium", 0.7, "steady voice <loud>"),
    ("engagement.updated", 0.0, {"state": "engaged", "start": 0.0}),
    _sig("signal.updated", "confidence", 2.5, "high", 0.9, "steadier"),
    ("conversation_quality.updated", 8.0, {"overall": VALUES, "timeline": [{"start": 0, "end": 8, "values": VALUES}]}),
    ("coverage.dropped", 9.0, {"ranges": [{"start": 9.0, "end": 12.0}]}),
    ("signal.ended", 9.0, {"signal_type": "confidence", "end": 9.0}),
    ("engagement.updated", 12.0, {"state": "disengaged", "start": 12.0}),
    _sig("signal.detected", "hesitation", 12.0, "low", 0.55, "pauses"),
    ("feedback.generated", 14.0, {"feedback": "Slow down."}),
    ("coverage.degraded", 14.0, {"ranges": [{"start": 14.0, "end": 15.0}], "reason": "no_audio"}),
    ("conversation_quality.updated", 16.0,
     {"overall": VALUES, "timeline": [{"start": 12, "end": 16, "values": {**VALUES, "clarity": 30.0}}]}),
    ("signal.ended", 17.0, {"signal_type": "hesitation", "end": 17.0}),
    ("session.ended", 18.0, {"reason": "client_shutdown", "billed_seconds": 15.0,
                             "analyzed_ranges": [{"start": 0, "end": 9}, {"start": 12, "end": 18}],
                             "dropped_ranges": [{"start": 9.0, "end": 12.0}]}),
]


@pytest.fixture
def timeline_file(tmp_path):
    path = tmp_path / "sess_t.jsonl"
    lines = [json.dumps(build_envelope(e, d, t=t, correlation_id="c")) for e, t, d in EVENTS]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return path


def test_episodes_strips_and_curves(timeline_file):
    tl = load(timeline_file)
    assert tl.session_id == "sess_t" and tl.duration == 18.0
    assert tl.signals == ["confidence", "hesitation"]
    conf, hes = tl.episodes
    assert (conf.start, conf.end) == (0.0, 9.0)
    assert [(b.start, b.end, b.band) for b in conf.bands] == [(0.0, 2.5, "medium"), (2.5, 9.0, "high")]
    assert conf.rationale == "steadier" and conf.peak.score == 0.9
    assert (hes.start, hes.end, hes.bands[0].band) == (12.0, 17.0, "low")
    assert tl.engagement == [(0.0, 12.0, "engaged"), (12.0, 18.0, "disengaged")]
    assert tl.dropped == [(9.0, 12.0)]  # from coverage.dropped and session.ended, merged
    assert tl.degraded == [(14.0, 15.0, "no_audio")]
    assert [w[:2] for w in tl.cqi_windows] == [(0, 8), (12, 16)] and len(tl.cqi_overall) == 2
    assert tl.feedback == [(14.0, "Slow down.")]


def test_implicit_and_missing_ends():
    events = load_events_from([
        _sig("signal.detected", "stress", 1.0),
        _sig("signal.detected", "interest", 2.0),
        ("signal.ended", 4.0, {"signal_type": "stress", "end": 4.0}, True),
        ("conversation_quality.updated", 6.0, {"overall": VALUES}),
    ])
    tl = build(events)
    stress, interest = tl.episodes
    assert stress.implicit_end and stress.end == 4.0
    assert interest.end == 6.0 and interest.bands[-1].end == 6.0  # never ended: open to the last event


def load_events_from(items):
    from inter1srv.client.events import parse_event

    out = []
    for item in items:
        env = build_envelope(item[0], item[2], t=item[1], correlation_id="c")
        if len(item) > 3:
            env["implicit"] = True
        out.append(parse_event(env))
    return out


def test_png_is_written(timeline_file, tmp_path):
    import matplotlib.image

    out = render_png(load(timeline_file), tmp_path / "r.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(out).shape[:2]
    assert width >= 1400 and height >= 700


def test_html_is_self_contained_and_shows_rationales(timeline_file):
    html = render_html(load(timeline_file))
    assert html.startswith("<!doctype html>") and "<svg" in html and "<script>" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no CDN, nothing fetched
    for text in ("confidence", "hesitation", "steadier", "pauses", "Slow down.", "dropped 9.0-12.0 s"):
        assert text in html
    assert "steady voice &lt;loud&gt;" in html and "<loud>" not in html  # escaped
    assert html.count('class="band"') == 3


def test_report_command_writes_both(timeline_file, tmp_path):
    png, page = tmp_path / "o.png", tmp_path / "o.html"
    assert main(["report", str(timeline_file), "--png", str(png), "--html", str(page)]) == 0
    assert png.stat().st_size > 10_000 and "hesitation" in page.read_text()
    assert main(["report", str(timeline_file)]) == 0  # default: PNG beside the timeline
    assert timeline_file.with_suffix(".png").exists()
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2


def test_empty_timeline_still_renders(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(build_envelope("session.ready", {}, t=0, correlation_id="c")) + "\n")
    tl = load(path)
    assert render_png(tl, tmp_path / "e.png").exists()
    assert "no signal detected" in render_html(tl)
    assert load_events(path)[0].type == "session.ready"
