"""Accelerator settings and small host tensors sent to an accelerator without a host wait."""

from __future__ import annotations

import torch


def to_device_async(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` on `device`. On CUDA through pinned memory, without blocking: a copy from
    ordinary (pageable) host memory waits until the device has run everything queued before it,
    which would stall the host once a step (a batch's indices, an augmentation's draws)."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def use_tf32(enabled: bool) -> None:
    """Float32 matrix products and convolutions on NVIDIA tensor cores (Ampere and newer) in
    TF32, or exact; for the whole process. Through the legacy switches: once the newer
    per-backend `fp32_precision` is set, `torch.get_float32_matmul_precision`, which Lightning
    reads, fails."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
