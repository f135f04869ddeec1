"""The DALI media path (``INTER1SRV_MEDIA=dali``) against the torch path, on real decoded frames.

DALI's CPU operators run the same pipeline a GPU worker runs on its device, so these run in CI;
the CUDA variant is the ``gpu``-marked test at the end.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.baseline import BaselineModel
from workers.dali_media import MEDIA_ENV, DaliGray, TorchGray, make_gray, media_backend
from workers.features import VIDEO_H, VIDEO_W, to_gray_small

pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (test extra)")

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dali() -> DaliGray:
    return DaliGray("cpu", max_frames=32)


def test_backend_is_chosen_by_name_or_environment(monkeypatch):
    monkeypatch.delenv(MEDIA_ENV, raising=False)
    assert media_backend() == "torch" and isinstance(make_gray(None, "cpu"), TorchGray)
    monkeypatch.setenv(MEDIA_ENV, " DALI ")
    assert media_backend() == "dali"
    assert media_backend("torch") == "torch"  # an explicit choice wins over the environment
    with pytest.raises(ValueError, match="INTER1SRV_MEDIA='nvdec'"):
        media_backend("nvdec")


def test_same_grey_frames_as_torch_on_recorded_frames(media, dali):
    frames = media.frames[:80]  # 320x240, 8 s at 10 fps of libvpx-encoded video
    got, want = dali(frames), to_gray_small(frames, CPU)
    assert got.shape == (80, VIDEO_H, VIDEO_W) and got.dtype == torch.float32
    assert float(want.std()) > 5  # real picture content, not a flat frame
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def _resized(media, h: int, w: int, n: int = 6) -> np.ndarray:
    x = torch.from_numpy(media.frames[:n]).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear").round().clamp(0, 255)
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


@pytest.mark.parametrize("h, w", [(180, 320), (480, 640), (720, 1280), (1080, 1920)])
def test_same_grey_frames_at_other_ring_and_camera_sizes(media, dali, h, w):
    """320x180 is what a 16:9 camera's ring holds (its 180x160 subsample is box-averaged 3x2);
    the camera sizes subsample to 160x120 (2x2)."""
    frames = _resized(media, h, w)
    torch.testing.assert_close(dali(frames), to_gray_small(frames, CPU), atol=1e-4, rtol=0)


def test_other_sizes_stay_within_a_grey_level(media, dali):
    """A subsample that is not twice 80x60 (here 200x300 frames): DALI's antialiased resize where
    torch takes an area average; close on average, apart at sharp edges (the scripted head's rim)."""
    frames = np.ascontiguousarray(media.frames[:10, 20:220, 10:310])
    diff = (dali(frames) - to_gray_small(frames, CPU)).abs().flatten()
    assert float(diff.mean()) < 0.5 and float(torch.quantile(diff, 0.99)) < 8.0


def test_more_frames_than_one_pipeline_batch(media, dali):
    frames = media.frames[:75]  # 32 + 32 + 11
    torch.testing.assert_close(dali(frames), torch.cat([dali(frames[:40]), dali(frames[40:])]), atol=0, rtol=0)


def test_read_only_views_and_no_frames(media, dali):
    frames = media.frames[:5].copy()
    frames.flags.writeable = False  # frames straight from a shared-memory ring
    torch.testing.assert_close(dali(frames), to_gray_small(frames, CPU), atol=1e-4, rtol=0)
    assert dali(frames[:0]).shape == (0, VIDEO_H, VIDEO_W)


def test_model_on_dali_gives_the_torch_results(media):
    """The whole model with ``media="dali"``: motion cues and signals as on the torch path."""
    windows = [media.window(0.0, 8.0), media.window(3.0, 11.0), media.window(20.0, 28.0)]
    on_dali = BaselineModel("cpu", faces=False, asr="none", media="dali")
    on_torch = BaselineModel("cpu", faces=False, asr="none", media="torch")
    assert on_dali.cache_stats()["media"] == "dali" and on_torch.cache_stats()["media"] == "torch"
    for a, b in zip(on_dali.analyze(windows), on_torch.analyze(windows), strict=True):
        assert [(c["cue"], c["start"], c["end"]) for c in a["cues"]] == [(c["cue"], c["start"], c["end"]) for c in b["cues"]]
        np.testing.assert_allclose([c["value"] for c in a["cues"]], [c["value"] for c in b["cues"]], rtol=1e-4, atol=1e-4)
        for s in a["signals"]:
            np.testing.assert_allclose(a["signals"][s], b["signals"][s], atol=1e-4)
    assert any(c["cue"] == "motion_energy" for r in on_dali.analyze(windows[:1]) for c in r["cues"])


def test_dali_requested_without_dali_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dali(name, *args, **kwargs):
        if name.startswith("nvidia.dali"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dali)
    with pytest.raises(RuntimeError, match="INTER1SRV_MEDIA=dali needs NVIDIA DALI: pip install nvidia-dali"):
        DaliGray("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_dali_on_cuda_matches_torch_on_cuda(media):
    cuda = torch.device("cuda")
    gray = DaliGray(cuda)
    frames = media.frames[:80]
    got = gray(frames)
    assert got.device.type == "cuda"
    torch.testing.assert_close(got, to_gray_small(frames, cuda), atol=1e-3, rtol=0)
