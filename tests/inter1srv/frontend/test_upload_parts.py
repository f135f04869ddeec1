"""The upload endpoint's pieces: multipart parsing, sniffing, the report, the container source."""

import io
from fractions import Fraction

import numpy as np
import pytest

from inter1srv.config import ServerConfig
from inter1srv.frontend import multipart
from inter1srv.frontend.container import ContainerSource
from inter1srv.frontend.report import build_report
from inter1srv.frontend.upload import BadUpload, open_source, parse_options, sniff
from inter1srv.ingest.decode import MediaDecoder
from inter1srv.synthmedia import default_script, encode_webm, synth_audio, synth_frame


def test_multipart_round_trip_with_httpx_encoding():
    import httpx

    request = httpx.Request("POST", "http://x/", files={"file": ("a.webm", b"\x1a\x45\r\n--x", "video/webm")},
                            data={"include[]": ["conversation_quality_overall"], "goal_dimensions[]": ["clarity", "energy"]})
    body = request.read()
    form = multipart.parse(body, request.headers["content-type"])
    assert form.files["file"].data == b"\x1a\x45\r\n--x" and form.files["file"].filename == "a.webm"
    assert form.values("goal_dimensions[]") == ["clarity", "energy"]
    include, goals = parse_options(form)
    assert include == {"conversation_quality_overall"} and goals == ["clarity", "energy"]
    with pytest.raises(multipart.MultipartError):
        multipart.parse(body[:-10], request.headers["content-type"])
    with pytest.raises(multipart.MultipartError):
        multipart.parse(body, "application/json")


def test_options_validation():
    form = multipart.Form(fields={"include[]": ["feedback", "conversation_quality"]})
    include, goals = parse_options(form)
    assert "conversation_quality_timeline" in include and goals == ["clarity", "authority", "energy", "rapport",
                                                                     "learning"]
    with pytest.raises(BadUpload):
        parse_options(multipart.Form(fields={"goal_dimensions[]": ["charm"]}))


def test_sniff():
    assert sniff(b"\x1a\x45\xdf\xa3....") == "ebml"
    assert sniff(b"\x00\x00\x00\x20ftypisom") == "isobmff" and sniff(b"\x00\x00\x00\x08wide") == "isobmff"
    assert sniff(b"RIFF....AVI ") is None


def _ev(etype, t, **data):
    return {"type": etype, "t": t, "data": data}


def test_report_pairs_signals_and_folds_engagement_and_cqi():
    values = {"quality_index": 60, "clarity": 70, "authority": 60, "energy": 50, "rapport": 60, "learning": 60}
    events = [
        _ev("signal.detected", 0.0, signal_type="stress", start=0.0, probability="low", probability_score=0.3,
            rationale="a", modality=["paraverbal"]),
        _ev("engagement.updated", 0.0, state="engaged", start=0.0),
        _ev("signal.updated", 3.0, signal_type="stress", start=0.0, probability="high", probability_score=0.8,
            rationale="b", modality=["nonverbal"]),
        _ev("conversation_quality.updated", 8.0, overall=values, timeline=[{"start": 0, "end": 8, "values": values}]),
        _ev("engagement.updated", 9.0, state="neutral", start=9.0),
        _ev("signal.ended", 10.0, signal_type="stress", end=10.0),
        _ev("feedback.generated", 12.0, feedback="Keep going."),
    ]
    report = build_report(events, media_end=15.0, include={"conversation_quality_overall"}, goal_dimensions=["energy"])
    assert report["signals"] == [{"type": "stress", "start": 0.0, "end": 10.0, "probability": "high",
                                  "rationale": "b", "modality": ["paraverbal", "nonverbal"]}]
    assert report["engagement_state"] == [{"state": "engaged", "start": 0.0, "end": 9.0},
                                          {"state": "neutral", "start": 9.0, "end": 15.0}]
    assert report["conversation_quality"] == {"overall": values}
    assert report["feedback"] == {"type": "feedback", "message": "Keep going.", "active_dimensions": ["energy"],
                                  "primary_signal": "stress"}
    bare = build_report([], media_end=4.0, include=set(), goal_dimensions=["clarity"])
    assert bare["feedback"]["type"] == "no_feedback" and "conversation_quality" not in bare


def _mp4(seconds: float) -> bytes:
    import av

    script = default_script(seconds)
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format="mp4")
    v = out.add_stream("libx264", rate=15)
    v.width, v.height, v.pix_fmt = 320, 240, "yuv420p"
    v.codec_context.options = {"preset": "ultrafast"}
    a = out.add_stream("aac", rate=48000)
    a.codec_context.layout = "mono"
    for i in range(int(seconds * 15)):
        frame = av.VideoFrame.from_ndarray(synth_frame(script, i / 15, 320, 240), format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, 15)
        out.mux(v.encode(frame))
    out.mux(v.encode(None))
    samples = synth_audio(script)
    for start in range(0, len(samples), 1024):
        frame = av.AudioFrame.from_ndarray(samples[start:start + 1024].reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
        out.mux(a.encode(frame))
    out.mux(a.encode(None))
    out.close()
    return buf.getvalue()


def test_container_source_matches_the_webm_decoder():
    cfg = ServerConfig()
    source, duration = open_source(cfg, _mp4(6.0))
    assert isinstance(source, ContainerSource) and abs(duration - 6.0) < 0.1
    parts = [source.decode(3.0), source.finish()]
    frames = [t for p in parts for t, _ in p.frames]
    audio = np.concatenate([p.audio for p in parts])
    webm = MediaDecoder(fps=cfg.analysis_fps, width=cfg.analysis_width, max_height=cfg.analysis_max_height,
                        pixel_format=cfg.ring_pixel_format)
    webm.feed(encode_webm(default_script(6.0), width=320, height=240, fps=15))
    ref = webm.finish()
    assert abs(len(frames) - len(ref.frames)) <= 1 and frames == sorted(frames) and frames[0] < 0.1
    assert parts[0].frames[-1][0] < 3.0 <= parts[1].frames[0][0] + 0.07
    assert parts[0].frames[0][1].shape == ref.frames[0][1].shape
    assert abs(len(audio) - len(ref.audio)) < 0.1 * 16000
    n = min(len(audio), len(ref.audio))
    rms = lambda x: float(np.sqrt(np.mean(x ** 2)))  # noqa: E731
    assert rms(audio[:n]) == pytest.approx(rms(ref.audio[:n]), rel=0.2)
    source.close()


def test_unreadable_and_short_files():
    cfg = ServerConfig()
    with pytest.raises(BadUpload) as info:
        open_source(cfg, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    assert info.value.status == 415 and info.value.code == "ih5004"
    with pytest.raises(BadUpload) as info:
        open_source(cfg, b"GIF89a....")
    assert info.value.status == 415 and info.value.code == "ih4015"
    _, duration = open_source(cfg, encode_webm(default_script(2.0), width=160, height=120, fps=10))
    assert duration < 3.0
