"""What a worker reports about its accelerator for /metrics (nothing on a CPU-only host)."""

from __future__ import annotations


def gpu_stats(device: str) -> dict | None:
    """Memory (bytes) and utilisation (%) of this worker's GPU, or None without CUDA."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    stats = {
        "gpu_memory_allocated_bytes": float(torch.cuda.memory_allocated()),
        "gpu_memory_reserved_bytes": float(torch.cuda.memory_reserved()),
    }
    free, total = torch.cuda.mem_get_info()
    stats["gpu_memory_used_bytes"] = float(total - free)
    stats["gpu_memory_total_bytes"] = float(total)
    try:
        stats["gpu_utilization_percent"] = float(torch.cuda.utilization())  # needs NVML (pynvml)
    except Exception:  # noqa: BLE001 - utilisation is optional: no NVML bindings installed
        pass
    return stats
