"""MTCNN face detection (Zhang et al. 2016) in plain Torch, batched over many frames on any device.

Weights: the P-, R- and O-net state dicts that ship inside the ``facenet-pytorch``
2.6.0 wheel (``facenet_pytorch/data/{pnet,rnet,onet}.pt``, ~2 MB). That package
pins torch<2.3 and numpy<2 and imports torchvision, so it is installed with
``pip install --no-deps facenet-pytorch==2.6.0`` and never imported: only its
data directory is located (:func:`weights_dir`) and the files are checked
against their SHA-256 before ``torch.load(weights_only=True)``. Nothing is
downloaded at run time.

:class:`Mtcnn.detect` takes a stack of frames (N, H, W, 3) uint8 RGB and runs
the three stages for all of them at once: the P-net over the image pyramid
(one convolution per scale for the whole stack), then one R-net and one O-net
pass over the candidate crops of every frame (bilinear crops gathered on the
device from a 1, 1/2, 1/4 mip pyramid). Non-maximum suppression runs on the
host in NumPy (a few hundred boxes at most). :meth:`Mtcnn.track` runs the
O-net alone on given boxes (following a known face, ~1-2 ms per face on one
CPU core). The max-pooling layers use strided maxima (the same values, several
times faster on the CPU than PyTorch's ceil-mode kernel at these sizes). The result per frame is a :class:`Faces`:
boxes, scores and the five landmarks (left eye, right eye, nose, left and
right mouth corner, in image coordinates; "left" is the image's left).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.cuda_graphs import BucketedGraphs
from workers.cuda_numerics import use_full_float32
from workers.package_data import package_dir
from workers.staging import FrameStaging

WEIGHTS_PACKAGE = "facenet_pytorch"
WEIGHTS_SHA256 = {
    "pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_FACTOR = 0.709
STAGING_FRAMES = 1024  # frames per device batch staged through the reused pinned buffer (CUDA)
MIN_FACE = 36  # px: the smallest face the Haar path finds too (its full-frame search runs at half size)


class WeightsMissing(RuntimeError):
    """The MTCNN weight files are not installed (or do not match their hashes)."""


def _max_pool_ceil(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """``max_pool2d(x, k, s, ceil_mode=True)`` as strided maxima, rows then columns (several times
    faster on CPU than PyTorch's kernel for these small channel counts; the same values)."""
    h, w = x.shape[-2], x.shape[-1]
    oh, ow = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    ph, pw = s * (oh - 1) + k - h, s * (ow - 1) + k - w
    if ph > 0 or pw > 0:
        x = F.pad(x, (0, max(0, pw), 0, max(0, ph)), value=float("-inf"))
    cols = x[..., 0:s * (ow - 1) + 1:s]
    for j in range(1, k):
        cols = torch.maximum(cols, x[..., j:j + s * (ow - 1) + 1:s])
    out = cols[..., 0:s * (oh - 1) + 1:s, :]
    for i in range(1, k):
        out = torch.maximum(out, cols[..., i:i + s * (oh - 1) + 1:s, :])
    return out


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _max_pool_ceil(self.prelu1(self.conv1(x)), 2, 2)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _max_pool_ceil(self.prelu1(self.conv1(x)), 3, 2)
        x = _max_pool_ceil(self.prelu2(self.conv2(x)), 3, 2)
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # the weights were trained in (W, H, C) order
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48x48 crops: box, five landmarks, score."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _max_pool_ceil(self.prelu1(self.conv1(x)), 3, 2)
        x = _max_pool_ceil(self.prelu2(self.conv2(x)), 3, 2)
        x = _max_pool_ceil(self.prelu3(self.conv3(x)), 2, 2)
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


def weights_dir() -> str | None:
    """The installed ``facenet_pytorch/data`` directory, found without importing the package."""
    return package_dir(WEIGHTS_PACKAGE, "data", WEIGHTS_SHA256)


def load_state(name: str, directory: str | None = None) -> dict[str, torch.Tensor]:
    """One net's state dict, after checking the file's SHA-256."""
    directory = directory or weights_dir()
    if directory is None:
        raise WeightsMissing(f"MTCNN weights not found: pip install --no-deps facenet-pytorch==2.6.0 ({name})")
    path = os.path.join(directory, name)
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256[name]:
        raise WeightsMissing(f"{path}: sha256 {digest} is not the expected {WEIGHTS_SHA256[name]}")
    import io

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


@dataclass
class Faces:
    """Detections in one frame, largest first."""

    boxes: np.ndarray  # (K, 4) x0, y0, x1, y1 pixel edges
    scores: np.ndarray  # (K,)
    landmarks: np.ndarray  # (K, 5, 2) x, y: left eye, right eye, nose, mouth left, mouth right


def _empty_faces() -> Faces:
    return Faces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


def nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression within each group; returns kept indices, best first."""
    if boxes.shape[0] == 0:
        return np.zeros(0, np.int64)
    off = groups.astype(np.float64)[:, None] * (float(np.abs(boxes).max()) + 2.0) * 2.0
    b = boxes.astype(np.float64) + off
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(scores, kind="stable")[::-1]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = w * h
        den = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        order = rest[inter / den <= threshold]
    return np.asarray(keep, np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.copy()
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


class _Pyramid:
    """Normalised frames at full, 1/2 and 1/4 size (2x2 averages), each computed when first needed;
    stored (N, H, W, C) so crops gather whole pixels."""

    def __init__(self, imgs: torch.Tensor) -> None:
        self.imgs, self.device = imgs, imgs.device  # (N, H, W, 3) uint8
        self.height, self.width = int(imgs.shape[1]), int(imgs.shape[2])
        h, w, self.max_level = self.height, self.width, 0
        while self.max_level < 2 and h % 2 == 0 and w % 2 == 0 and min(h, w) >= 48:
            h, w, self.max_level = h // 2, w // 2, self.max_level + 1
        self._levels: dict[int, torch.Tensor] = {}

    def level(self, i: int) -> torch.Tensor:
        """(N, H / 2**i, W / 2**i, 3) float32."""
        if i not in self._levels:
            self._levels[i] = ((self.imgs.to(torch.float32) - 127.5) * 0.0078125 if i == 0
                               else F.avg_pool2d(self.nchw(i - 1), 2).permute(0, 2, 3, 1).contiguous())
        return self._levels[i]

    def nchw(self, i: int) -> torch.Tensor:
        """Level ``i`` as an (N, 3, H, W) view (channels-last memory)."""
        return self.level(i).permute(0, 3, 1, 2)


class Mtcnn:
    """The three MTCNN stages for stacks of frames on one device (see the module docstring)."""

    def __init__(self, device: str | torch.device = "cpu", *, min_face: int = MIN_FACE,
                 thresholds: tuple[float, float, float] = THRESHOLDS, directory: str | None = None) -> None:
        self.device = torch.device(device)
        use_full_float32(self.device)
        self.min_face, self.thresholds = int(min_face), thresholds
        self._staging: FrameStaging | None = None  # CUDA only, created at the first batch
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        for net, name in ((self.pnet, "pnet.pt"), (self.rnet, "rnet.pt"), (self.onet, "onet.pt")):
            net.load_state_dict(load_state(name, directory))
            net.to(self.device).eval()
        # fixed-shape crops: replayed CUDA graphs per bucketed batch size where $INTER1SRV_CUDA_GRAPHS asks
        self._rnet = BucketedGraphs(self.rnet, name="R-net")
        self._onet = BucketedGraphs(self.onet, name="O-net")

    @torch.inference_mode()
    def warm_up(self, height: int = 240, width: int = 320) -> None:
        """One pass of each net (CUDA kernels and cuDNN choices happen here, not in the first batch)."""
        frame = np.full((1, height, width, 3), 128, np.uint8)
        self.detect(frame)
        self.rnet(torch.zeros((1, 3, 24, 24), device=self.device))
        self._rnet.warm((3, 24, 24), self.device)
        self._onet.warm((3, 48, 48), self.device)
        self.track(frame, np.array([[width / 3, height / 3, width / 2, height / 2]], np.float32))

    def scales(self, h: int, w: int) -> list[float]:
        m = 12.0 / self.min_face
        side = min(h, w) * m
        out, s = [], m
        while side >= 12:
            out.append(s)
            s *= PYRAMID_FACTOR
            side *= PYRAMID_FACTOR
        return out

    def _prepare(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 on the device (a quarter of a float copy to move).

        On CUDA, host frames go through :class:`workers.staging.FrameStaging`: one reused pinned
        buffer and a copy stream the compute stream waits on (see that module)."""
        if isinstance(frames, np.ndarray) and self.device.type == "cuda" and frames.shape[0] <= STAGING_FRAMES:
            if self._staging is None:
                self._staging = FrameStaging(self.device, max_frames=STAGING_FRAMES)
            return self._staging.stage([frames]).frames[: frames.shape[0]]
        x = torch.as_tensor(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
        return x.to(self.device)

    def _crops(self, pyr: _Pyramid, boxes: np.ndarray, inds: np.ndarray, size: int) -> torch.Tensor:
        """(K, 3, size, size) crops of boxes (1-based inclusive corners) of frames ``inds``, zero outside.

        Bilinear samples from the pyramid level where the box spans ``size`` to ``2 * size`` pixels
        (each output pixel then averages about the input it covers, like the reference
        implementation's area resampling), gathered for all boxes of all frames at once on the device.
        """
        dev = pyr.device
        k = boxes.shape[0]
        b = torch.as_tensor(np.asarray(boxes, np.float32)[:, :4], device=dev)
        width, height = b[:, 2] - b[:, 0] + 1.0, b[:, 3] - b[:, 1] + 1.0
        side = torch.maximum(width, height).clamp_min(1.0)
        lvl = torch.floor(torch.log2(side / size)).clamp(0, pyr.max_level).long().cpu().numpy()
        frames = torch.as_tensor(np.asarray(inds, np.int64), device=dev)
        frac = (torch.arange(size, device=dev, dtype=torch.float32) + 0.5) / size
        out = torch.zeros((k, 3, size, size), dtype=torch.float32, device=dev)
        for level in np.unique(lvl).tolist():
            sel = torch.as_tensor(np.flatnonzero(lvl == level), device=dev)
            # level 0 is gathered from the uint8 frames (no float copy of whole frames for a few crops)
            img = pyr.imgs if level == 0 else pyr.level(level)
            n, h, w, c = img.shape
            flat = img.reshape(n * h * w, c)
            scale = float(2 ** level)
            bs = b.index_select(0, sel)
            # pixel-edge region [x0 - 1, x1) -> pixel-centre coordinates at this level
            xs = ((bs[:, 0:1] - 1.0) + frac[None, :] * width[sel][:, None]) / scale - 0.5
            ys = ((bs[:, 1:2] - 1.0) + frac[None, :] * height[sel][:, None]) / scale - 0.5
            x0, y0 = xs.floor(), ys.floor()
            wx, wy = (xs - x0)[:, None, :], (ys - y0)[:, :, None]
            x0, y0 = x0.long(), y0.long()
            base = (frames.index_select(0, sel) * (h * w))[:, None, None]
            m = sel.numel()
            acc = torch.zeros((m, size, size, c), dtype=torch.float32, device=dev)
            weight = torch.zeros((m, size, size, 1), dtype=torch.float32, device=dev)
            for dy, fy in ((0, 1 - wy), (1, wy)):
                yy = y0 + dy
                vy = ((yy >= 0) & (yy < h))[:, :, None]
                row = base + yy.clamp(0, h - 1)[:, :, None] * w
                for dx, fx in ((0, 1 - wx), (1, wx)):
                    xx = x0 + dx
                    vx = ((xx >= 0) & (xx < w))[:, None, :]
                    idx = (row + xx.clamp(0, w - 1)[:, None, :]).reshape(-1)
                    wt = (fy * fx * (vy & vx))[..., None]
                    acc += flat.index_select(0, idx).reshape(m, size, size, c).to(torch.float32) * wt
                    weight += wt
            if level == 0:  # raw -> normalised; outside the image stays 0
                acc = (acc - 127.5 * weight) * 0.0078125
            out[sel] = acc.permute(0, 3, 1, 2)
        return out

    def _output(self, levels: _Pyramid, boxes: np.ndarray, inds: np.ndarray):
        """O-net on square candidate boxes: (boxes as pixel edges, scores, landmarks, inds) that pass."""
        reg, pts, prob = self._onet(self._crops(levels, boxes, inds, 48))
        score, reg, pts = prob[:, 1].cpu().numpy(), reg.cpu().numpy(), pts.cpu().numpy()
        ok = score > self.thresholds[2]
        boxes, inds, score, reg, pts = boxes[ok], inds[ok], score[ok], reg[ok], pts[ok]
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        lx = bw * pts[:, :5] + boxes[:, :1] - 1
        ly = bh * pts[:, 5:] + boxes[:, 1:2] - 1
        marks = np.stack([lx, ly], axis=-1)
        boxes = _regress(boxes, reg)
        boxes[:, :2] -= 1.0  # 1-based inclusive corners -> pixel edges
        return boxes, score, marks, inds

    @torch.inference_mode()
    def detect(self, frames: np.ndarray | torch.Tensor) -> list[Faces]:
        """Faces in each of the (N, H, W, 3) uint8 RGB frames."""
        n = int(frames.shape[0])
        if n == 0:
            return []
        levels = _Pyramid(self._prepare(frames))
        h, w = levels.height, levels.width
        t1, t2, _ = self.thresholds

        # ---- stage 1: P-net over the pyramid, all frames at once
        cand, cand_inds = [], []
        half = levels.nchw(1) if levels.max_level >= 1 else None
        for scale in self.scales(h, w):
            size = (int(h * scale + 1), int(w * scale + 1))
            # area resampling; scales under 1/2 start from the exact 2x2 average (4x less work)
            src = half if half is not None and scale < 0.5 else levels.nchw(0)
            im = F.interpolate(src, size=size, mode="area")
            reg, prob = self.pnet(im)
            mask = prob[:, 1] >= t1
            idx = mask.nonzero()
            if idx.shape[0] == 0:
                continue
            score = prob[:, 1][mask]
            r = reg.permute(0, 2, 3, 1)[mask]
            idx_h, score_h, r_h = idx.cpu().numpy(), score.cpu().numpy(), r.cpu().numpy()
            xy = idx_h[:, [2, 1]].astype(np.float32)
            q1 = np.floor((2 * xy + 1) / scale)
            q2 = np.floor((2 * xy + 12) / scale)
            boxes = np.concatenate([q1, q2], axis=1)
            keep = nms(boxes, score_h, idx_h[:, 0], 0.5)
            cand.append(np.concatenate([boxes, score_h[:, None], r_h], axis=1)[keep])
            cand_inds.append(idx_h[keep, 0])
        out = [_empty_faces() for _ in range(n)]
        if not cand:
            return out
        boxes, inds = np.concatenate(cand), np.concatenate(cand_inds)
        keep = nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[keep], inds[keep]
        boxes = _square(_regress(boxes[:, :4], boxes[:, 5:9]))

        # ---- stage 2: R-net on 24x24 crops of every frame's candidates
        reg, prob = self._rnet(self._crops(levels, boxes, inds, 24))
        score, reg = prob[:, 1].cpu().numpy(), reg.cpu().numpy()
        ok = score > t2
        boxes, inds, score, reg = boxes[ok], inds[ok], score[ok], reg[ok]
        if boxes.shape[0] == 0:
            return out
        keep = nms(boxes, score, inds, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        inds = inds[keep]

        # ---- stage 3: O-net on 48x48 crops: final boxes, scores, landmarks
        boxes, score, marks, inds = self._output(levels, boxes, inds)
        if boxes.shape[0] == 0:
            return out
        keep = nms(boxes, score, inds, 0.7, "min")
        boxes, inds, score, marks = boxes[keep], inds[keep], score[keep], marks[keep]
        for i in range(n):
            sel = np.flatnonzero(inds == i)
            if sel.size == 0:
                continue
            area = (boxes[sel, 2] - boxes[sel, 0]) * (boxes[sel, 3] - boxes[sel, 1])
            sel = sel[np.argsort(-area, kind="stable")]
            out[i] = Faces(boxes[sel].astype(np.float32), score[sel].astype(np.float32),
                           marks[sel].astype(np.float32))
        return out

    @torch.inference_mode()
    def track(self, frames: np.ndarray | torch.Tensor, boxes: np.ndarray) -> list[Faces]:
        """Follow one known face per frame: the O-net alone on the square around ``boxes[i]``
        (pixel edges, e.g. the face in the previous frame). Empty where the O-net rejects it."""
        n = int(frames.shape[0])
        if n == 0:
            return []
        levels = _Pyramid(self._prepare(frames))
        b = np.asarray(boxes, np.float64).copy()
        b[:, :2] += 1.0  # pixel edges -> 1-based inclusive corners
        out_boxes, score, marks, inds = self._output(levels, _square(b), np.arange(n))
        out = [_empty_faces() for _ in range(n)]
        for j, i in enumerate(inds):
            out[int(i)] = Faces(out_boxes[j:j + 1].astype(np.float32), score[j:j + 1].astype(np.float32),
                                marks[j:j + 1].astype(np.float32))
        return out


def roll_degrees(landmarks: np.ndarray) -> float:
    """Head roll (tilt) from the eye line, degrees; positive when the image's right eye is lower
    (the head tilted towards the image's right, i.e. clockwise as seen)."""
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))
