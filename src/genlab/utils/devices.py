"""Small host tensors sent to an accelerator without making the host wait for it."""

from __future__ import annotations

import torch


def to_device_async(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` on `device`. On CUDA through pinned memory, without blocking: a copy from
    ordinary (pageable) host memory waits until the device has run everything queued before it,
    which would stall the host once a step (a batch's indices, an augmentation's draws)."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)
