import pytest

from workers.device_stats import gpu_stats


def test_cpu_worker_reports_no_gpu_stats():
    assert gpu_stats("cpu") is None


@pytest.mark.gpu
def test_cuda_worker_reports_memory():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    stats = gpu_stats("cuda")
    assert stats["gpu_memory_total_bytes"] > 0
