"""CUDA graphs per bucketed batch size for the R-net, O-net and expression network.

On the CPU: the switch, the eager fallback, and the property the graphs rely on (zero rows padded
to a bucket change no real row of these networks' outputs). On CUDA (``gpu``-marked): replayed
graphs against eager calls, captures per bucket, copies that later replays do not overwrite.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers import expression, mtcnn
from workers.cuda_graphs import GRAPHS_ENV, BucketedGraphs, graphs_enabled, pad_to_bucket

needs_mtcnn = pytest.mark.skipif(mtcnn.weights_dir() is None, reason="MTCNN weights missing (facenet-pytorch)")
needs_expression = pytest.mark.skipif(expression.weights_path() is None, reason="expression weights missing (fer)")


def _crops(n: int, size: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, channels, size, size), generator=g) * 2 - 1


def test_switch_reads_the_environment(monkeypatch):
    monkeypatch.delenv(GRAPHS_ENV, raising=False)
    assert not graphs_enabled()
    for value, want in (("1", True), ("on", True), ("TRUE", True), ("0", False), ("no", False)):
        monkeypatch.setenv(GRAPHS_ENV, value)
        assert graphs_enabled() is want
    assert graphs_enabled(False) is False  # an explicit choice wins


def test_cpu_calls_run_the_module_as_is():
    calls: list[tuple[int, ...]] = []

    def module(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return x * 2

    graphs = BucketedGraphs(module, enabled=True)
    x = torch.ones((5, 3, 24, 24))
    assert torch.equal(graphs(x), x * 2)
    assert calls == [(5, 3, 24, 24)] and graphs.captures == 0  # no padding, no capture off the GPU
    graphs.warm((3, 24, 24), torch.device("cpu"))
    assert graphs.captures == 0 and len(calls) == 1


def test_padding_to_a_bucket():
    x = _crops(5, 24)
    padded = pad_to_bucket(x)
    assert padded.shape == (8, 3, 24, 24) and torch.equal(padded[:5], x) and not padded[5:].any()
    assert pad_to_bucket(_crops(8, 24)).shape[0] == 8
    cl = _crops(3, 24).contiguous(memory_format=torch.channels_last)
    assert pad_to_bucket(cl).is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="exceed"):
        pad_to_bucket(_crops(300, 4), max_batch=256)


@needs_mtcnn
@pytest.mark.parametrize("net_name, size", [("rnet", 24), ("onet", 48)])
def test_padding_changes_no_real_row_of_the_mtcnn_nets(net_name, size):
    net = getattr(mtcnn.Mtcnn("cpu"), net_name)
    with torch.inference_mode():
        for n in (1, 3, 5, 11):
            x = _crops(n, size, seed=n)
            eager, padded = net(x), net(pad_to_bucket(x))
            for a, b in zip(eager, padded, strict=True):
                torch.testing.assert_close(b[:n], a, atol=1e-5, rtol=1e-5)


@needs_expression
def test_padding_changes_no_real_row_of_the_expression_network():
    net = expression.ExpressionNet("cpu").net
    with torch.inference_mode():
        for n in (1, 3, 6):
            x = _crops(n, expression.INPUT, channels=1, seed=n).contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(net(pad_to_bucket(x))[:n], net(x), atol=1e-5, rtol=1e-5)


@needs_mtcnn
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_replayed_graphs_match_eager_calls_on_cuda():
    net = mtcnn.Mtcnn("cuda").onet
    graphs = BucketedGraphs(net, enabled=True, name="O-net")
    results = []
    with torch.inference_mode():
        for n in (1, 3, 8, 13, 3):
            x = _crops(n, 48, seed=n).cuda()
            got = graphs(x)
            # the same padded batch eagerly: the same kernels, so tight; the unpadded call may pick others
            for a, b in zip(got, net(pad_to_bucket(x)), strict=True):
                torch.testing.assert_close(a, b[:n], atol=1e-5, rtol=1e-5)
            for a, b in zip(got, net(x), strict=True):
                torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
            results.append((x, got))
        x0, first = results[0]
        for a, b in zip(first, net(pad_to_bucket(x0)), strict=True):  # copies: later replays left them alone
            torch.testing.assert_close(a, b[:1], atol=1e-5, rtol=1e-5)
        assert graphs(_crops(40, 48).cuda())[0].shape == (40, 4)  # above the largest bucket: eager
    assert graphs.captures == 4 and graphs.replays == 5  # buckets 1, 4, 8, 16; the second 3 replays 4


@needs_mtcnn
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mtcnn_with_graphs_finds_the_same_faces(monkeypatch):
    data = pytest.importorskip("skimage.data")
    frames = np.stack([np.ascontiguousarray(data.astronaut())] * 3)
    monkeypatch.setenv(GRAPHS_ENV, "1")
    graphed = mtcnn.Mtcnn("cuda")
    graphed.warm_up(512, 512)
    monkeypatch.delenv(GRAPHS_ENV)
    eager = mtcnn.Mtcnn("cuda")
    assert graphed._onet.captures == graphed._rnet.captures == 6  # buckets 1 to 32, at start
    before = (graphed._rnet.replays, graphed._onet.replays)
    faces = graphed.detect(frames)
    assert graphed._rnet.replays > before[0] and graphed._onet.replays > before[1]
    assert eager._onet.captures == eager._onet.replays == 0
    for a, b in zip(faces, eager.detect(frames), strict=True):
        assert a.boxes.shape[0] >= 1
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)
