"""Float32 on CUDA as on the CPU: no TF32.

PyTorch lets cuDNN convolutions run in TF32 (a 10-bit mantissa) on Ampere and newer GPUs by
default. Emulated on the CPU, that moves the expression network's smile probability by up to
3.4e-3 and MTCNN's boxes by ~0.1 px: more than the CPU-vs-CUDA tests allow, and enough to move a
borderline cue, so a CUDA worker would not give the CPU's results. The networks are small and
launch-bound, so full float32 should cost little (not yet measured on a GPU).
"""

from __future__ import annotations

import torch


def use_full_float32(device: str | torch.device) -> None:
    """Turn TF32 off for this process when ``device`` is a CUDA device (a process-wide switch)."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
