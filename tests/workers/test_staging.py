"""Frame staging for the GPU path: bucketed shapes, one reused host buffer, rows that map back."""

import numpy as np
import pytest
import torch

from workers.staging import FrameStaging, bucket_size


def _frames(n: int, seed: int, h: int = 24, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_bucket_sizes_are_powers_of_two_capped():
    assert [bucket_size(n, 64) for n in (0, 1, 2, 3, 5, 33, 64)] == [1, 1, 2, 4, 8, 64, 64]
    with pytest.raises(ValueError):
        bucket_size(65, 64)


def _check(staging: FrameStaging, arrays: list[np.ndarray]) -> None:
    staged = staging.stage(arrays)
    assert staged.frames.shape[0] == bucket_size(sum(a.shape[0] for a in arrays), staging.max_frames)
    assert staged.frames.device.type == staging.device.type
    host = staged.frames.cpu().numpy()
    for a, rows in zip(arrays, staged.rows, strict=True):
        np.testing.assert_array_equal(host[rows], a)
    assert not host[staged.used:].any(), "padding rows are zeros"


def test_windows_of_several_sessions_share_one_bucketed_tensor():
    staging = FrameStaging("cpu", max_frames=256)
    _check(staging, [_frames(80, 1), _frames(0, 2), _frames(37, 3)])


def test_host_buffers_are_reused_across_batches():
    staging = FrameStaging("cpu", max_frames=256)
    for seed in range(6):
        _check(staging, [_frames(50 + seed, seed), _frames(40, seed + 10)])  # 90-95 frames: bucket 128
    assert staging.allocations == 1
    _check(staging, [_frames(3, 7)])  # another bucket: one more buffer, kept for later batches
    _check(staging, [_frames(4, 8)])
    assert staging.allocations == 2


def test_mixed_frame_sizes_are_refused():
    with pytest.raises(ValueError, match="different shapes"):
        FrameStaging("cpu").stage([_frames(2, 1), _frames(2, 2, h=48)])


@pytest.mark.gpu
def test_cuda_staging_is_pinned_ordered_and_exact():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    staging = FrameStaging("cuda", max_frames=512)
    for seed in range(20):  # back to back: reuse of the pinned buffer must wait for the previous copy
        arrays = [_frames(60, seed), _frames(45, seed + 100)]
        staged = staging.stage(arrays)
        total = staged.frames.to(torch.int64).sum().item()  # compute on the current stream (exact)
        assert total == int(sum(a.astype(np.int64).sum() for a in arrays))
    assert staging.allocations == 1
    assert next(iter(staging._host.values())).is_pinned()
