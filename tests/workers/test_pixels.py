"""workers.pixels: the rings' I420 frames back to RGB, checked against swscale's own RGB of real video."""

from __future__ import annotations

import numpy as np
import pytest

from inter1srv.ingest.decode import MediaDecoder
from perf.media import clip
from workers.pixels import to_rgb


@pytest.fixture(scope="module")
def decoded() -> dict[str, np.ndarray]:
    """The same real 640x480 VP8 clip (a photographed face moving) decoded to both ring formats."""
    data = clip(3.0, 640, 480, fps=30)
    out = {}
    for fmt in ("rgb24", "yuv420p"):
        with MediaDecoder(fps=10, width=320, max_height=240, pixel_format=fmt) as decoder:
            decoder.feed(data)
            out[fmt] = np.stack([f for _, f in decoder.finish().frames])
    return out


def test_i420_frames_convert_to_the_rgb_pictures(decoded) -> None:
    rgb = to_rgb(decoded["yuv420p"], "yuv420p")
    ref = decoded["rgb24"]
    assert rgb.shape == ref.shape == (30, 240, 320, 3) and rgb.dtype == np.uint8
    diff = np.abs(rgb.astype(np.int16) - ref.astype(np.int16))
    # the same colour matrix; only the chroma's 4:2:0 upsampling differs (sharp colour edges)
    assert diff.mean() < 3.0 and np.percentile(diff, 99) <= 12
    grey = lambda x: x.astype(np.float64) @ [0.299, 0.587, 0.114]  # noqa: E731
    assert np.abs(grey(rgb) - grey(ref)).mean() < 1.5  # what the motion cues read
    assert np.array_equal(to_rgb(decoded["yuv420p"][:0], "yuv420p"), np.zeros((0, 240, 320, 3), np.uint8))


def test_rgb_frames_pass_through_and_wrong_arrays_are_refused(decoded) -> None:
    assert to_rgb(decoded["rgb24"], "rgb24") is decoded["rgb24"]
    with pytest.raises(ValueError, match="yuv420p"):
        to_rgb(decoded["rgb24"], "yuv420p")
    with pytest.raises(ValueError, match="rgb24"):
        to_rgb(decoded["yuv420p"], "rgb24")
    with pytest.raises(ValueError, match="pixel format"):
        to_rgb(decoded["rgb24"], "bgr24")


@pytest.mark.parametrize("colorspace, color_range", [("ITU601", "MPEG"), ("ITU709", "MPEG"), ("ITU709", "JPEG"),
                                                     ("ITU601", "JPEG")])
def test_sources_tagged_bt709_or_full_range_keep_their_colours(colorspace, color_range) -> None:
    """Phones tag H.264 BT.709, some sources full range: the I420 written into the rings is BT.601
    limited range whatever the tags, so the worker's RGB is the source's colours."""
    import av
    import cv2
    from av.video.reformatter import VideoReformatter
    from skimage import data

    from inter1srv.ingest.decode import analysis_frame

    picture = cv2.resize(data.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)
    reformatter = VideoReformatter()
    source = reformatter.reformat(av.VideoFrame.from_ndarray(picture, format="rgb24"), format="yuv420p",
                                  dst_colorspace=colorspace, dst_color_range=color_range)  # a tagged decoded frame
    rgb = analysis_frame(reformatter, source, 320, 240, "rgb24")
    via_ring = to_rgb(analysis_frame(reformatter, source, 320, 240, "yuv420p")[None], "yuv420p")[0]
    assert np.abs(via_ring.astype(np.int16) - rgb.astype(np.int16)).mean() < 2.0  # untreated: 3-8 levels
    expected = cv2.resize(picture, (320, 240), interpolation=cv2.INTER_AREA)
    assert np.abs(via_ring.astype(np.int16) - expected.astype(np.int16)).mean() < 3.0
