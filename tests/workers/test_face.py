"""Face trackers (workers.face): detector choice, MTCNN records and landmark cues, batching and cache."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from workers import face, mtcnn
from workers.face import FaceFrame, FaceTracker, MtcnnTracker, face_cues, make_tracker

pytest.importorskip("cv2")
pytest.importorskip("skimage")
needs_weights = pytest.mark.skipif(mtcnn.weights_dir() is None,
                                   reason="MTCNN weights missing: pip install --no-deps facenet-pytorch==2.6.0")
FPS = 10


def _clip(*heads: str, seconds: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation corpus's astronaut moved by script: one segment of ``seconds`` per head."""
    from workers.evaluation.corpus import Seg, head_pose, render

    frames, times = [], []
    for n, head in enumerate(heads):
        seg = Seg(head, seconds, head)
        for k in range(int(seconds * FPS)):
            frames.append(render(head_pose(seg, k / FPS, seconds)))
            times.append(n * seconds + k / FPS)
    return np.stack(frames), np.round(np.array(times), 6)


@pytest.fixture(scope="module")
def tracker() -> MtcnnTracker:
    if mtcnn.weights_dir() is None:
        pytest.skip("MTCNN weights missing")
    torch.set_num_threads(1)
    return MtcnnTracker("cpu")


def _cues(recs: list[FaceFrame], end: float, name: str) -> list[dict]:
    return [c for c in face_cues(recs, 0.0, end)[0] if c["cue"] == name]


def test_make_tracker_choice(monkeypatch):
    monkeypatch.setenv(face.FACE_ENV, "haar")
    assert isinstance(make_tracker(), FaceTracker)
    assert make_tracker("auto", "cpu").kind == face.CPU_DEFAULT or mtcnn.weights_dir() is None
    with pytest.raises(ValueError):
        make_tracker("dlib")
    if mtcnn.weights_dir() is not None:
        monkeypatch.setenv(face.FACE_ENV, "mtcnn")
        assert isinstance(make_tracker(), MtcnnTracker)


def test_missing_weights_fall_back_to_haar(monkeypatch, caplog):
    monkeypatch.setattr(mtcnn, "weights_dir", lambda: None)
    with caplog.at_level(logging.WARNING, logger="inter1srv.worker"):
        tracker = make_tracker("mtcnn")
    assert isinstance(tracker, FaceTracker)
    assert "falling back" in caplog.text and "facenet-pytorch" in caplog.text


@needs_weights
def test_mtcnn_records_nod_shake_look_away_absent(tracker):
    frames, times = _clip("nod", "shake", "look_away", "absent")
    recs = tracker.frames("s1", frames, times)
    state = np.array([r.state for r in recs])
    assert (state[:100] == "frontal").all()
    assert (state[110:150] == "turned").mean() > 0.9  # the squeezed (yawed) face
    assert (state[155:] == "absent").all()
    assert _cues(recs, 20.0, "head_nod") and _cues(recs, 20.0, "head_shake")
    nods = _cues(recs, 20.0, "head_nod")
    assert all(c["end"] <= 5.3 and 1.5 <= c["rate_hz"] <= 2.5 for c in nods)
    assert all(c["start"] >= 4.7 for c in _cues(recs, 20.0, "head_shake"))
    assert [c["start"] for c in _cues(recs, 20.0, "look_away")] == pytest.approx([10.3], abs=0.3)
    upright = recs[:100]  # nod and shake: frontal landmarks
    assert all(abs(r.roll) < 8 and r.eye_ratio > 0.95 and abs(r.nose_offset) < 0.15 for r in upright)


@needs_weights
def test_head_tilt_cue_from_landmarks(tracker):
    from workers.evaluation.corpus import TILT_DEG

    frames, times = _clip("still", "tilt")
    recs = tracker.frames("s2", frames, times)
    (tilt,) = _cues(recs, 10.0, "head_tilt")
    assert tilt["start"] == pytest.approx(5.2, abs=0.4) and tilt["end"] == pytest.approx(10.0)
    # the photo's own eye line is ~3 degrees off; the script adds TILT_DEG clockwise
    assert tilt["value"] == pytest.approx(TILT_DEG + 3, abs=4)
    assert all(r.state == "frontal" for r in recs)  # a tilted face is no look-away


def test_haar_cannot_measure_tilt():
    frames, times = _clip("tilt", seconds=3.0)
    recs = FaceTracker().frames("h", frames, times)
    assert all(np.isnan(r.roll) for r in recs)
    assert _cues(recs, 3.0, "head_tilt") == []


def test_tilt_needs_a_minimum_time_and_angle():
    t = np.arange(30) / FPS
    recs = [FaceFrame(float(x), "frontal", 100.0, 100.0, 60.0, 1, roll=15.0 if x < 0.8 else 2.0) for x in t]
    assert _cues(recs, 3.0, "head_tilt") == []  # 0.8 s is too short
    recs = [FaceFrame(float(x), "frontal", 100.0, 100.0, 60.0, 1, roll=-14.0 if x >= 1.0 else 8.0) for x in t]
    (c,) = _cues(recs, 3.0, "head_tilt")
    assert c["value"] == pytest.approx(-14.0) and c["start"] == pytest.approx(0.9)


@needs_weights
def test_batch_of_windows_equals_one_by_one_and_shares_chains(tracker):
    frames, times = _clip("nod", "tilt")
    windows = [(0.0, 8.0), (3.0, 10.0), (1.5, 9.5)]  # the third starts mid-second (not cached)

    def items(sid: str) -> list:
        out = []
        for a, b in windows:
            sel = (times >= a) & (times < b)
            out.append((sid, frames[sel], times[sel]))
        return out

    one_by_one = [MtcnnTracker("cpu").frames(*item) for item in items("a")]
    batched_tracker = MtcnnTracker("cpu")
    batched = batched_tracker.frames_batch(items("b"))
    for x, y in zip(one_by_one, batched, strict=True):
        assert [r.state for r in x] == [r.state for r in y]
        np.testing.assert_allclose([r.cy for r in x], [r.cy for r in y], atol=1e-3)
        np.testing.assert_allclose([r.roll for r in x], [r.roll for r in y], atol=1e-3)
    # distinct frame times: 100; the overlapping anchored windows share their chains
    assert batched_tracker.cache.misses <= 100 + 80


@needs_weights
def test_overlapping_windows_hit_the_cache(tracker):
    frames, times = _clip("nod", "still")
    fresh = MtcnnTracker("cpu")
    first = fresh.frames("c", frames[:80], times[:80])
    misses = fresh.cache.misses
    second = fresh.frames("c", frames[30:], times[30:])
    assert fresh.cache.misses - misses == 20  # only the 2 new seconds
    assert fresh.cache.hits == 50
    assert [r.cy for r in first[30:]] == [r.cy for r in second[:50]]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@needs_weights
def test_cuda_tracker_matches_cpu(tracker):
    frames, times = _clip("nod", "tilt", "look_away", "absent", seconds=3.0)
    items = [(f"s{i}", frames, times + 20.0 * i) for i in range(4)]  # four sessions in one batch
    gpu = MtcnnTracker("cuda").frames_batch(items)
    cpu = MtcnnTracker("cpu").frames_batch(items)
    for a, b in zip(gpu, cpu, strict=True):
        assert [r.state for r in a] == [r.state for r in b]
        np.testing.assert_allclose([r.cy for r in a], [r.cy for r in b], atol=0.3)
        np.testing.assert_allclose([r.roll for r in a], [r.roll for r in b], atol=0.5)
    assert make_tracker("auto", "cuda").kind == "mtcnn"


@needs_weights
def test_model_cites_head_tilt_for_confusion_and_batches_sessions():
    from workers.baseline import BaselineModel
    from workers.contract import WindowInput

    frames, times = _clip("nod", "tilt", seconds=4.0)
    audio = np.zeros(8 * 16_000, np.float32)
    model = BaselineModel("cpu", asr="none", faces="mtcnn")
    assert model.cache_stats()["face_detector"] == "mtcnn"
    windows = [WindowInput(f"j{i}", f"s{i}", 0.0, 8.0, frames, times, audio, 0.0) for i in range(3)]
    results = model.analyze(windows)
    assert results[0] == results[1] == results[2]  # three sessions, one batched detector run
    r = results[0]
    names = {c["cue"] for c in r["cues"]}
    assert {"head_nod", "head_tilt"} <= names
    assert "head_tilt" in r["drivers"]["confusion"] and "head_nod" in r["drivers"]["agreement"]
    tilt_steps = [i for i, t in enumerate(r["times"]) if t >= 5.5]
    assert min(r["signals"]["confusion"][i] for i in tilt_steps) >= 0.45


def test_face_size_is_measured_every_half_second_for_the_session_baseline():
    t = np.arange(0.0, 4.0, 0.1)
    # 2 s at 60 px, then 2 s at 80 px, with a 1 s gap (absent) in the middle of the second part
    recs = [FaceFrame(float(x), "absent" if 2.5 <= x < 3.0 else "frontal", 100.0, 100.0,
                      60.0 if x < 2.0 else 80.0, 1) for x in t]
    sizes = [c for c in face_cues(recs, 0.0, 4.0)[0] if c["cue"] == "face_size"]
    assert all(0.3 <= c["end"] - c["start"] <= 0.75 for c in sizes)
    assert [c["value"] for c in sizes if c["end"] <= 2.0] == [60.0] * 4
    assert [c["value"] for c in sizes if c["start"] >= 2.0] == [80.0] * len([c for c in sizes if c["start"] >= 2.0])
    assert not [c for c in sizes if c["start"] < 2.85 and c["end"] > 2.55], "no size where no face was seen"
    # a lean needs the session's usual size: the window alone reports none
    assert not [c for c in face_cues(recs, 0.0, 4.0)[0] if c["cue"] in ("lean_in", "lean_back")]
