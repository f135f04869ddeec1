"""The perf suite's media (perf.media): a real face photo moved by the script, so the face path is loaded."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: perf/ is not installed

from perf.media import photo_frame  # noqa: E402

pytest.importorskip("cv2")
pytest.importorskip("skimage")


def test_photo_frames_follow_the_script_and_hold_a_trackable_face():
    from inter1srv.synthmedia import default_script
    from workers import mtcnn
    from workers.face import MtcnnTracker

    script = default_script(40.0)
    kinds = {seg.motion: script.start_of(i) + seg.seconds / 2 for i, seg in enumerate(script.segments)}
    frames = {motion: photo_frame(script, t, 640, 480) for motion, t in kinds.items()}
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames.values())
    assert frames["absent"].std(axis=(0, 1)).max() < 25  # background only: no face drawn
    assert frames["still"].std(axis=(0, 1)).max() > 25
    if mtcnn.weights_dir() is None:
        pytest.skip("MTCNN weights missing")
    import cv2

    tracker = MtcnnTracker("cpu")
    for motion in ("still", "nod", "fidget", "shake", "absent"):
        small = cv2.resize(frames[motion], (320, 240), interpolation=cv2.INTER_AREA)
        (rec,) = tracker.frames(motion, small[None], np.zeros(1))
        assert (rec.state == "frontal") == (motion != "absent"), (motion, rec.state)
