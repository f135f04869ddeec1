"""Any input file becomes WebM VP8/VP9 + Opus: as is, remuxed, or transcoded (PyAV)."""

import io

import av
import pytest

from inter1srv.client.chunker import webm_chunks
from inter1srv.client.media import prepare
from inter1srv.synthmedia import (
    default_script,
    encode_mp4,
    encode_webm,
    recorder_layout,
)


def _codecs(data: bytes) -> tuple[str, list[str], float]:
    with av.open(io.BytesIO(data)) as c:
        names = sorted(s.codec_context.name for s in c.streams)
        decoded = max((f.time or 0.0) for f in c.decode(video=0))
        return c.format.name, names, decoded


def test_webm_goes_as_is(tmp_path):
    data = encode_webm(default_script(2.0), width=160, height=120, fps=10)
    path = tmp_path / "a.webm"
    path.write_bytes(data)
    media = prepare(path)
    assert media.action == "as-is" and media.data == data
    assert (media.video_codec, media.audio_codec) == ("vp8", "opus")


def test_a_file_layout_webm_is_sent_in_recorder_layout(tmp_path):
    data = encode_webm(default_script(2.0), width=160, height=120, fps=10, live=False)
    path = tmp_path / "file.webm"
    path.write_bytes(data)
    media = prepare(path)
    assert media.action == "as-is" and media.data == recorder_layout(data) != data
    assert b"\x1f\x43\xb6\x75\x01\xff\xff\xff\xff\xff\xff\xff" in media.data  # unknown-size Cluster


def test_h264_aac_mp4_is_transcoded_to_vp8_opus(tmp_path):
    path = tmp_path / "a.mp4"
    path.write_bytes(encode_mp4(4.0))
    media = prepare(path)
    assert media.action == "transcode" and media.duration == pytest.approx(4.0, abs=0.2)
    fmt, names, last_frame = _codecs(media.data)
    assert "webm" in fmt and names == ["opus", "vp8"]
    assert last_frame == pytest.approx(4.0, abs=0.2)
    assert webm_chunks(media.data)[-1].media_time == pytest.approx(4.0, abs=0.2)


def test_vp9_opus_in_mp4_is_remuxed_without_reencoding(tmp_path):
    path = tmp_path / "b.mp4"
    path.write_bytes(encode_mp4(2.0, vcodec="libvpx-vp9", acodec="libopus", rate=48000, size=(160, 120)))
    media = prepare(path)
    assert media.action == "remux"
    fmt, names, _ = _codecs(media.data)
    assert "webm" in fmt and names == ["opus", "vp9"]


def test_large_video_is_scaled_down_for_streaming(tmp_path):
    path = tmp_path / "c.mp4"
    path.write_bytes(encode_mp4(1.0, size=(1280, 720), fps=10))
    media = prepare(path)
    with av.open(io.BytesIO(media.data)) as c:
        v = c.streams.video[0].codec_context
        assert (v.width, v.height) == (640, 360)


def test_a_file_without_media_is_refused(tmp_path):
    path = tmp_path / "x.webm"
    path.write_bytes(b"not media at all")
    with pytest.raises(ValueError):
        prepare(path)
