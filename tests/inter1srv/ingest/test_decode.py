"""MediaDecoder on real WebM: analysis-rate frames, continuous 16 kHz audio, errors as IngestError."""

from __future__ import annotations

import gc
import os
import threading

import numpy as np
import pytest

from inter1srv.ingest.decode import DecodedMedia, MediaDecoder, analysis_size
from inter1srv.ingest.ebml import Block, WebmDemuxer
from inter1srv.ingest.errors import IngestError
from inter1srv.synthmedia import MuxTrack, default_script, mux_webm, synth_frame

SR = 16000


def decode_all(data: bytes, **kwargs) -> DecodedMedia:
    with MediaDecoder(**kwargs) as decoder:
        decoder.feed(data)
        return decoder.finish()


def merge(parts: list[DecodedMedia]) -> tuple[list[tuple[float, np.ndarray]], np.ndarray]:
    frames = [f for p in parts for f in p.frames]
    audio = np.concatenate([p.audio for p in parts]) if parts else np.zeros(0, np.float32)
    return frames, audio


def same_output(a_frames, a_audio, b_frames, b_audio) -> bool:
    return (
        len(a_frames) == len(b_frames)
        and all(ta == tb and np.array_equal(fa, fb) for (ta, fa), (tb, fb) in zip(a_frames, b_frames, strict=True))
        and np.array_equal(a_audio, b_audio)
    )


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12))


def best_lag(x: np.ndarray, y: np.ndarray, max_lag: int = 160) -> int:
    """|lag| in samples that best aligns x with y (asserting they are the same signal)."""
    m = max_lag
    scores = [float(np.dot(x[m:-m], y[m + k:len(y) - m + k])) for k in range(-m, m + 1)]
    best = int(np.argmax(scores))
    assert scores[best] > 0.9 * float(np.dot(y[m:-m], y[m:-m]))
    return abs(best - m)


def blocks_and_tracks(data: bytes):
    demuxer = WebmDemuxer()
    items = demuxer.feed(data)
    demuxer.end()
    return [x for x in items if isinstance(x, Block)], demuxer.tracks


def run_with_timeout(fn, seconds: float = 20.0) -> None:
    errors: list[BaseException] = []

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung"
    if errors:
        raise errors[0]


# --- the main clip ------------------------------------------------------------------
def test_frames_at_the_analysis_rate(clips, decoded_live):
    out = decoded_live
    duration = clips.script.duration
    assert abs(len(out.frames) - duration * 10) <= 1
    times = np.array([t for t, _ in out.frames])
    assert times[0] == 0.0
    assert np.all(np.diff(times) > 0)
    assert np.allclose(np.diff(times), 0.1, atol=0.002)
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for _, f in out.frames)
    assert abs(out.video_until - duration) < 0.06
    assert out.warnings == [] and out.gaps == []


def test_frames_show_the_scripted_picture(clips, decoded_live):
    for t, frame in decoded_live.frames[::25]:
        expected = synth_frame(clips.script, t, 320, 240)
        assert np.abs(frame.astype(int) - expected).mean() < 12, t


def test_audio_length_and_loudness(clips, decoded_live):
    out = decoded_live
    duration = clips.script.duration
    assert out.audio.dtype == np.float32 and out.audio.ndim == 1
    assert out.audio_start == 0.0
    assert abs(len(out.audio) - duration * SR) <= 20 * SR // 1000  # within one 20 ms packet
    assert out.audio_until == len(out.audio) / SR
    start = 0.0
    for seg in clips.script.segments:
        a, b = int((start + 0.3) * SR), int((start + seg.seconds - 0.3) * SR)
        level = rms_db(out.audio[a:b])
        if seg.speech:
            assert level > seg.loudness_db - 12, (start, level)
        else:
            assert level < -50, (start, level)
        start += seg.seconds


def test_ffmpeg_layout_decodes_identically(clips, decoded_live):
    out = decode_all(clips.ffmpeg)
    assert same_output(out.frames, out.audio, decoded_live.frames, decoded_live.audio)


def test_properties(clips):
    with MediaDecoder() as decoder:
        assert decoder.tracks is None and decoder.frame_size is None and decoder.queued_until is None
        decoder.feed(clips.live[:50_000])
        assert decoder.has_video and decoder.has_audio
        assert sorted(t.kind for t in decoder.tracks.values()) == ["audio", "video"]
        assert 0 < decoder.queued_until < 5
        decoder.decode()
        assert decoder.frame_size == (320, 240)
        assert 0 < decoder.decoded_until <= decoder.queued_until + 0.05


def test_decode_until_honours_the_bound(clips, decoded_live):
    with MediaDecoder() as decoder:
        decoder.feed(clips.live)
        first = decoder.decode(until=5.0)
        assert first.frames and all(t < 5.0 for t, _ in first.frames)
        assert first.frames[-1][0] == pytest.approx(4.9)
        assert 5.0 <= first.video_until < 5.06
        assert 4.9 < first.audio_until <= 5.0
        second = decoder.decode(until=12.0)
        assert all(5.0 <= t < 12.0 for t, _ in second.frames)
        assert second.audio_start == first.audio_until
        assert decoder.decode(until=12.0).frames == []  # nothing left before 12 s
        rest = decoder.finish()
    frames, audio = merge([first, second, rest])
    assert same_output(frames, audio, decoded_live.frames, decoded_live.audio)


def test_streaming_in_mediarecorder_chunks(clips, decoded_live):
    """Feed ~1 s chunks and decode up to what has arrived, as the server does."""
    data, parts = clips.live, []
    step = len(data) // 24 + 1
    with MediaDecoder() as decoder:
        for i in range(0, len(data), step):
            decoder.feed(data[i:i + step])
            parts.append(decoder.decode(until=decoder.queued_until))
            assert parts[-1].audio_start == sum(len(p.audio) for p in parts[:-1]) / SR
        parts.append(decoder.finish())
    frames, audio = merge(parts)
    assert same_output(frames, audio, decoded_live.frames, decoded_live.audio)


def test_one_byte_feeding_gives_identical_output(clips):
    data = clips.vp9
    with MediaDecoder() as decoder:
        for i in range(len(data)):
            decoder.feed(data[i:i + 1])
        slow = decoder.finish()
    fast = decode_all(data)
    assert len(fast.frames) == 40
    assert same_output(slow.frames, slow.audio, fast.frames, fast.audio)


def test_media_time_starts_at_the_first_block(clips, decoded_live):
    """A stream whose file timestamps start at 100 s decodes exactly like one starting at 0."""
    blocks, tracks = blocks_and_tracks(clips.live)
    shifted = [Block(b.track, b.time + 100.0, b.keyframe, b.data) for b in blocks]
    mux_tracks = [MuxTrack(1, "video", "V_VP8"),
                  MuxTrack(2, "audio", "A_OPUS", tracks[2].codec_private, codec_delay_ns=6_500_000)]
    out = decode_all(mux_webm(mux_tracks, shifted))
    assert same_output(out.frames, out.audio, decoded_live.frames, decoded_live.audio)


# --- other streams --------------------------------------------------------------------
def test_vp9(clips):
    out = decode_all(clips.vp9)
    assert len(out.frames) == 40 and out.frames[0][1].shape == (240, 320, 3)
    assert abs(len(out.audio) - 4 * SR) <= 320
    t, frame = out.frames[20]
    assert t == pytest.approx(2.0)
    assert np.abs(frame.astype(int) - synth_frame(default_script(4.0), t, 320, 240)).mean() < 12


def test_video_only(clips):
    with MediaDecoder() as decoder:
        decoder.feed(clips.video_only)
        out = decoder.finish()
        assert decoder.has_video and not decoder.has_audio
    assert len(out.frames) == 30
    assert len(out.audio) == 0 and out.audio_until is None
    assert out.warnings == []


def test_audio_only_warns_no_video(clips):
    with MediaDecoder() as decoder:
        decoder.feed(clips.audio_only)
        assert decoder.has_audio and not decoder.has_video
        out = decoder.finish()
    assert [(w.code, w.fatal) for w in out.warnings] == [("ih5001", False)]
    assert out.frames == [] and out.video_until is None
    assert abs(len(out.audio) - 10 * SR) <= 320
    assert rms_db(out.audio[SR:7 * SR]) > -30


def test_unsupported_video_codec_with_opus_audio(clips):
    """ih5001 as a warning: an H.264 video track (not decodable here) next to Opus audio."""
    blocks, tracks = blocks_and_tracks(clips.audio_only)
    audio_blocks = [Block(2, b.time, b.keyframe, b.data) for b in blocks]
    video_blocks = [Block(1, i / 10, i == 0, os.urandom(500)) for i in range(100)]
    merged = sorted(video_blocks + audio_blocks, key=lambda b: b.time)
    data = mux_webm([MuxTrack(1, "video", "V_MPEG4/ISO/AVC"),
                     MuxTrack(2, "audio", "A_OPUS", tracks[1].codec_private)], merged)
    parts = []
    with MediaDecoder() as decoder:
        for i in range(0, len(data), 10_000):
            decoder.feed(data[i:i + 10_000])
            parts.append(decoder.decode())
        parts.append(decoder.finish())
        assert not decoder.has_video and decoder.has_audio
    warnings = [w for p in parts for w in p.warnings]
    assert [w.code for w in warnings] == ["ih5001"] and "V_MPEG4/ISO/AVC" in warnings[0].message
    frames, audio = merge(parts)
    assert frames == []
    reference = decode_all(clips.audio_only).audio
    assert np.array_equal(audio, reference)


def test_unsupported_video_and_no_audio_is_fatal():
    data = mux_webm([MuxTrack(1, "video", "V_MPEG4/ISO/AVC")], [Block(1, 0.0, True, b"\0" * 100)])
    decoder = MediaDecoder()
    with pytest.raises(IngestError) as info:
        decoder.feed(data)
    assert info.value.code == "ih5001" and info.value.fatal
    with pytest.raises(IngestError):  # stays failed
        decoder.decode()
    decoder.close()


def test_corrupt_video_packets_are_fatal_ih5004():
    blocks = [Block(1, 0.0, True, b"\x10\x02\x00\x9d\x01\x2a" + os.urandom(3000)),
              Block(1, 0.05, False, os.urandom(300))]
    decoder = MediaDecoder()
    decoder.feed(mux_webm([MuxTrack(1, "video", "V_VP8")], blocks))
    with pytest.raises(IngestError) as info:
        decoder.finish()
    assert info.value.code == "ih5004"
    decoder.close()


def test_corrupt_audio_packets_are_fatal_ih5004(clips):
    blocks, tracks = blocks_and_tracks(clips.audio_only)
    bad = [Block(1, b.time, b.keyframe, b.data if i < 10 else b"\xff" * 3) for i, b in enumerate(blocks[:20])]
    data = mux_webm([MuxTrack(1, "audio", "A_OPUS", tracks[1].codec_private)], bad)
    with MediaDecoder() as decoder:
        decoder.feed(data)
        with pytest.raises(IngestError) as info:
            decoder.finish()
    assert info.value.code == "ih5004"


def test_malformed_stream_raises_from_feed(clips):
    decoder = MediaDecoder()
    decoder.feed(clips.live[:30_000])
    with pytest.raises(IngestError) as info:
        decoder.feed(b"\x1a\x45\xdf\xa3" + clips.live)  # a second EBML header mid-cluster
    assert info.value.code == "ih5004"
    decoder.close()
    with pytest.raises(IngestError):
        MediaDecoder().feed(b"RIFF....WAVEfmt ")


def test_stream_ending_before_tracks():
    decoder = MediaDecoder()
    assert decoder.finish().frames == []  # nothing sent at all: empty, no error
    decoder = MediaDecoder()
    decoder.feed(b"\x1a\x45\xdf\xa3\x9f\x42\x86")
    with pytest.raises(IngestError) as info:
        decoder.finish()
    assert info.value.code == "ih5004"


def test_truncated_stream_is_reported(clips):
    with MediaDecoder() as decoder:
        decoder.feed(clips.live[:-3])
        out = decoder.finish()
        assert decoder.truncated and "cut off" in decoder.truncated
    assert out.warnings == [] and len(out.frames) == 240


# --- audio timeline -------------------------------------------------------------------
def test_audio_gaps_and_leading_silence(clips, decoded_live):
    blocks, tracks = blocks_and_tracks(clips.live)
    kept = [b for b in blocks if b.track == 1 or (1.0 <= b.time < 5.0 or b.time >= 6.0)]
    data = mux_webm([MuxTrack(1, "video", "V_VP8"),
                     MuxTrack(2, "audio", "A_OPUS", tracks[2].codec_private, codec_delay_ns=6_500_000)], kept)
    out = decode_all(data)
    audio_gaps = [g for g in out.gaps if g[0] == "audio"]
    assert len(audio_gaps) == 2
    assert audio_gaps[0][1] == 0.0 and audio_gaps[0][2] == pytest.approx(1.0, abs=0.01)
    # Opus: a block's audio starts CodecDelay (6.5 ms) before its timestamp
    assert audio_gaps[1][1] == pytest.approx(5.0, abs=0.01) and audio_gaps[1][2] == pytest.approx(6.0, abs=0.01)
    assert out.warnings == []  # gaps are not protocol errors
    # ms-rounded timestamps: each re-anchoring may move the audio by ~1 ms
    assert abs(len(out.audio) - len(decoded_live.audio)) <= 32
    assert np.all(out.audio[:SR - 10] == 0) and np.all(out.audio[5 * SR + 10:int(5.99 * SR)] == 0)
    # elsewhere the audio is where it was (sample k is media time k/16000)
    for a, b in ((2 * SR, 4 * SR), (7 * SR, 8 * SR)):
        assert best_lag(out.audio[a:b], decoded_live.audio[a:b]) <= 32
    assert len(out.frames) == len(decoded_live.frames)


def test_audio_starting_after_video_is_padded(clips):
    blocks, tracks = blocks_and_tracks(clips.live)
    kept = [b for b in blocks if b.track == 1 or b.time >= 0.06]
    data = mux_webm([MuxTrack(1, "video", "V_VP8"),
                     MuxTrack(2, "audio", "A_OPUS", tracks[2].codec_private, codec_delay_ns=6_500_000)], kept)
    out = decode_all(data)
    assert out.gaps == []  # under the 100 ms threshold: padded silently
    first = np.flatnonzero(out.audio)[0]
    assert abs(first - 0.06 * SR) < 0.002 * SR


# --- frame size -----------------------------------------------------------------------
def test_analysis_size_rule():
    assert analysis_size(640, 480, 320, 320) == (320, 240)
    assert analysis_size(320, 240, 320, 320) == (320, 240)
    assert analysis_size(160, 120, 320, 320) == (160, 120)  # never upscaled
    assert analysis_size(1280, 720, 320, 320) == (320, 180)
    assert analysis_size(480, 640, 320, 320) == (240, 320)  # portrait: height bound
    assert analysis_size(1080, 1920, 320, 320) == (180, 320)
    assert analysis_size(641, 481, 321, 999) == (320, 240)  # even
    w, h = analysis_size(1000, 10, 320, 320)
    assert (w, h) == (320, 2)


def test_frame_size_from_the_first_frame(clips):
    out = decode_all(clips.vga)
    assert out.frames[0][1].shape == (240, 320, 3)
    out = decode_all(clips.vga, width=1000, max_height=1000)
    assert out.frames[0][1].shape == (480, 640, 3)
    out = decode_all(clips.vga, width=1000)
    assert out.frames[0][1].shape == (320, 426, 3)
    out = decode_all(clips.vga, width=640, max_height=200)
    assert out.frames[0][1].shape == (200, 266, 3)


def test_yuv420p_frames_are_the_same_pictures_in_half_the_bytes(clips, decoded_live):
    with MediaDecoder(pixel_format="yuv420p") as decoder:
        decoder.feed(clips.live)
        out = decoder.finish()
    assert [t for t, _ in out.frames] == [t for t, _ in decoded_live.frames]
    assert {f.shape for _, f in out.frames} == {(360, 320)} and out.frames[0][1].dtype == np.uint8
    assert np.array_equal(out.audio, decoded_live.audio)
    for (_, yuv), (_, rgb) in list(zip(out.frames, decoded_live.frames, strict=True))[::20]:
        luma = 16 + rgb.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255  # BT.601, limited range
        assert np.abs(yuv[:240].astype(np.float64) - luma).mean() < 1.5  # the Y plane is the picture's luma
    assert decode_all(clips.vga, width=640, max_height=200, pixel_format="yuv420p").frames[0][1].shape == (300, 266)
    with pytest.raises(ValueError, match="pixel format"):
        MediaDecoder(pixel_format="rgba")


def test_resolution_change_keeps_the_session_size(clips):
    a, _ = blocks_and_tracks(clips.vga)
    b, _ = blocks_and_tracks(clips.qqvga)
    blocks = a + [Block(1, x.time + 1.0, x.keyframe, x.data) for x in b]
    with MediaDecoder(fps=5) as decoder:
        decoder.feed(mux_webm([MuxTrack(1, "video", "V_VP8", width=640, height=480)], blocks))
        out = decoder.finish()
        assert decoder.frame_size == (320, 240)
    assert len(out.frames) == 10
    assert {f.shape for _, f in out.frames} == {(240, 320, 3)}


def test_other_analysis_rates(clips):
    out = decode_all(clips.video_only, fps=4)
    times = [t for t, _ in out.frames]
    assert times == pytest.approx([i * 0.25 for i in range(12)])
    out = decode_all(clips.video_only, fps=30)  # above the source rate: every frame
    assert len(out.frames) == 60


# --- lifecycle ------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_close_after_partial_feeding_does_not_hang(clips):
    def partial(threads: int, close: bool) -> None:
        decoder = MediaDecoder(threads=threads)
        decoder.feed(clips.live[: len(clips.live) // 3])
        decoder.decode(until=2.0)
        if close:
            decoder.close()
            decoder.close()  # idempotent
            with pytest.raises(RuntimeError):
                decoder.decode()
        del decoder
        gc.collect()

    for threads in (1, 2):
        for close in (True, False):
            run_with_timeout(lambda threads=threads, close=close: partial(threads, close))


@pytest.mark.timeout(60)
def test_feed_and_decode_from_two_threads(clips, decoded_live):
    """The event loop feeds while a worker thread decodes."""
    data = clips.live
    parts: list[DecodedMedia] = []
    with MediaDecoder() as decoder:
        done = threading.Event()

        def worker():
            while not done.is_set():
                parts.append(decoder.decode(until=decoder.queued_until))

        thread = threading.Thread(target=worker)
        thread.start()
        for i in range(0, len(data), 3000):
            decoder.feed(data[i:i + 3000])
        done.set()
        thread.join(30)
        parts.append(decoder.finish())
    frames, audio = merge(parts)
    assert same_output(frames, audio, decoded_live.frames, decoded_live.audio)


def test_absurd_timestamp_jump_is_fatal(clips):
    """A bogus cluster timecode must not make the decoder allocate hours of silence."""
    blocks, tracks = blocks_and_tracks(clips.audio_only)
    jumped = [Block(1, b.time + (86_400.0 if i >= 50 else 0.0), b.keyframe, b.data) for i, b in enumerate(blocks)]
    data = mux_webm([MuxTrack(1, "audio", "A_OPUS", tracks[1].codec_private)], jumped)
    with MediaDecoder() as decoder:
        decoder.feed(data)
        with pytest.raises(IngestError) as info:
            decoder.finish()
    assert info.value.code == "ih5004" and "jump" in info.value.message


def _opus_tone(layout: str, channels: int, seconds: float = 2.0) -> bytes:
    import io
    from fractions import Fraction

    import av

    buf = io.BytesIO()
    container = av.open(buf, "w", format="webm")
    stream = container.add_stream("libopus", rate=48000)
    stream.codec_context.layout = layout
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(48000 * seconds)) / 48000)).astype(np.float32)
    planes = np.stack([tone] * channels)
    for i in range(0, planes.shape[1], 960):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planes[:, i:i + 960]), format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = 48000, i, Fraction(1, 48000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return buf.getvalue()


def test_stereo_is_averaged_to_mono():
    """An L=R stereo microphone reads exactly like a mono one (no +3 dB downmix)."""
    mono = decode_all(_opus_tone("mono", 1)).audio
    stereo = decode_all(_opus_tone("stereo", 2)).audio
    assert abs(len(mono) - len(stereo)) <= 1
    assert rms_db(stereo[SR // 10:-SR // 10]) == pytest.approx(rms_db(mono[SR // 10:-SR // 10]), abs=0.2)
    assert rms_db(mono[SR // 10:-SR // 10]) == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.3)
