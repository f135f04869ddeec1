"""The Torch MTCNN (workers.mtcnn) on CPU: weights, the astronaut photo, batching, roll; CUDA vs CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workers import mtcnn
from workers.mtcnn import Mtcnn, WeightsMissing, _max_pool_ceil, nms, roll_degrees

pytestmark = pytest.mark.skipif(mtcnn.weights_dir() is None,
                                reason="MTCNN weights missing: pip install --no-deps facenet-pytorch==2.6.0")
# the astronaut's face in skimage.data.astronaut() (512x512): about x 177-272, y 66-161
FACE_BOX = (177, 66, 272, 161)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="module")
def net() -> Mtcnn:
    torch.set_num_threads(1)
    return Mtcnn("cpu")


def _rotate(img: np.ndarray, degrees_clockwise: float, centre: tuple[float, float]) -> np.ndarray:
    cv2 = pytest.importorskip("cv2")
    m = cv2.getRotationMatrix2D(centre, -degrees_clockwise, 1.0)
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def _small(img: np.ndarray) -> np.ndarray:
    """The astronaut at the analysis size (320 x 240 crop of the 320 x 320 resize)."""
    cv2 = pytest.importorskip("cv2")
    return np.ascontiguousarray(cv2.resize(img, (320, 320), interpolation=cv2.INTER_AREA)[20:260])


def test_weights_load_and_are_checked(tmp_path):
    directory = mtcnn.weights_dir()
    assert directory is not None and directory.endswith("data")
    for name in mtcnn.WEIGHTS_SHA256:
        state = mtcnn.load_state(name)
        assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    (tmp_path / "pnet.pt").write_bytes(b"not the weights")
    with pytest.raises(WeightsMissing, match="sha256"):
        mtcnn.load_state("pnet.pt", str(tmp_path))


def test_missing_weights_raise(monkeypatch):
    monkeypatch.setattr(mtcnn, "weights_dir", lambda: None)
    with pytest.raises(WeightsMissing, match="facenet-pytorch"):
        Mtcnn("cpu")


def test_fast_max_pool_equals_torch():
    g = torch.Generator().manual_seed(0)
    for shape, k, s in (((2, 10, 117, 157), 2, 2), ((5, 28, 22, 22), 3, 2), ((5, 48, 9, 9), 3, 2),
                        ((5, 64, 9, 9), 2, 2), ((3, 4, 10, 13), 3, 2)):
        x = torch.randn(*shape, generator=g)
        assert torch.equal(_max_pool_ceil(x, k, s), F.max_pool2d(x, k, s, ceil_mode=True))


def test_nms_keeps_the_best_of_overlapping_boxes_per_group():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.95, 0.8, 0.7], np.float32)
    groups = np.array([0, 0, 0, 1])
    assert sorted(nms(boxes, scores, groups, 0.5).tolist()) == [1, 2, 3]


def test_astronaut_face_and_landmarks(net, astronaut):
    (faces,) = net.detect(astronaut[None])
    assert len(faces.boxes) == 1 and faces.scores[0] > 0.99
    x0, y0, x1, y1 = faces.boxes[0]
    fx0, fy0, fx1, fy1 = FACE_BOX
    assert abs((x0 + x1) / 2 - (fx0 + fx1) / 2) < 12 and abs((y0 + y1) / 2 - (fy0 + fy1) / 2) < 20
    assert 0.8 < (x1 - x0) / (fx1 - fx0) < 1.3
    le, re_, nose, ml, mr = faces.landmarks[0]
    for x, y in faces.landmarks[0]:  # every landmark inside the face box
        assert x0 < x < x1 and y0 < y < y1
    assert le[0] < nose[0] < re_[0] and ml[0] < mr[0]  # image left to right
    assert max(le[1], re_[1]) < nose[1] < min(ml[1], mr[1])  # eyes above the nose above the mouth
    assert 30 < re_[0] - le[0] < 60  # eye distance of a ~95 px face
    assert abs(roll_degrees(faces.landmarks[0])) < 8


def test_batch_equals_single_calls(net, astronaut):
    small = _small(astronaut)
    frames = np.stack([small, np.roll(small, 9, axis=1), np.roll(small, -7, axis=0), np.zeros_like(small),
                       _rotate(small, 15, (160, 60))])
    batch = net.detect(frames)
    assert [len(f.boxes) for f in batch] == [1, 1, 1, 0, 1]
    for frame, got in zip(frames, batch, strict=True):
        (alone,) = net.detect(frame[None])
        assert len(alone.boxes) == len(got.boxes)
        np.testing.assert_allclose(alone.boxes, got.boxes, atol=0.05)
        np.testing.assert_allclose(alone.landmarks, got.landmarks, atol=0.05)
        np.testing.assert_allclose(alone.scores, got.scores, atol=1e-4)
    assert batch[1].boxes[0, 0] - batch[0].boxes[0, 0] == pytest.approx(9, abs=2)


@pytest.mark.parametrize("degrees", [-20.0, -12.0, 12.0, 20.0])
def test_rotated_face_gives_roll_sign_and_size(net, astronaut, degrees):
    (upright,) = net.detect(astronaut[None])
    base = roll_degrees(upright.landmarks[0])
    centre = tuple(float(v) for v in upright.landmarks[0].mean(axis=0))
    (faces,) = net.detect(_rotate(astronaut, degrees, centre)[None])
    assert len(faces.boxes) == 1
    roll = roll_degrees(faces.landmarks[0])
    assert roll - base == pytest.approx(degrees, abs=4.0)
    assert np.sign(roll - base) == np.sign(degrees)


def test_track_follows_a_moved_face(net, astronaut):
    small = _small(astronaut)
    (first,) = net.detect(small[None])
    moved = np.roll(small, (5, 8), axis=(0, 1))
    (tracked,) = net.track(moved[None], first.boxes[:1])
    (found,) = net.detect(moved[None])
    assert len(tracked.boxes) == 1
    shift = tracked.landmarks[0].mean(axis=0) - first.landmarks[0].mean(axis=0)
    assert shift == pytest.approx([8, 5], abs=1.5)
    np.testing.assert_allclose(tracked.landmarks[0], found.landmarks[0], atol=2.0)
    (none,) = net.track(np.zeros_like(small)[None], first.boxes[:1])
    assert len(none.boxes) == 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batch_matches_cpu(net, astronaut):
    small = _small(astronaut)
    frames = np.stack([small, np.roll(small, 9, axis=1), _rotate(small, 15, (160, 60)), np.zeros_like(small)] * 8)
    gpu = Mtcnn("cuda")
    got, ref = gpu.detect(frames), net.detect(frames)
    for a, b in zip(got, ref, strict=True):
        assert len(a.boxes) == len(b.boxes)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.5)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.5)
    boxes = np.stack([r.boxes[0] for r in ref[:3]])
    for a, b in zip(gpu.track(frames[:3], boxes), net.track(frames[:3], boxes), strict=True):
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.5)


def test_warm_up_runs_every_net(net):
    net.warm_up(120, 160)
