"""Throughput per training epoch: wall time (train + val), samples (and tokens) per second, model
FLOPs utilization, peak memory."""

from __future__ import annotations

import time

import lightning as L
import torch

from genlab.models.abilities import CountsTokens

# Dense bf16 peaks of common GPUs (FLOP/s), by a part of torch.cuda.get_device_name: what MFU is
# measured against, as nanoGPT measures it against the A100's.
BF16_PEAK_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10": 125e12,
}


def device_peak_flops(device: torch.device) -> float | None:
    """The dense bf16 peak of a CUDA device genlab knows, else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_FLOPS.items() if key in name), None)


class EpochTimer(L.Callback):
    """Logs `time/epoch_s`, `time/samples_per_s` and, on CUDA, `memory/peak_gb` each epoch; for
    a model that counts its tokens (GPT-2), `time/tokens_per_s` and `perf/mfu`: the model's
    FLOPs per token x tokens per second over the device's dense bf16 peak (`peak_flops`, or the
    GPU's from BF16_PEAK_FLOPS; none on a CPU unless given).

    They go to the loggers (TensorBoard), not to metrics.json, which stays reproducible.
    """

    def __init__(self, peak_flops: float | None = None):
        self.peak_flops = peak_flops
        self._start = 0.0
        self._samples = 0
        self._tokens = 0
        self._counts_tokens = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._samples = self._tokens = 0
        # Once an epoch, not per batch: a Protocol's isinstance looks up every member.
        self._counts_tokens = isinstance(pl_module, CountsTokens)
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)
            torch.cuda.synchronize(pl_module.device)  # none of the last epoch's work counted
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._samples += len(batch[0])
        if self._counts_tokens:
            self._tokens += pl_module.tokens_in(batch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation has already run inside the epoch when this hook fires. Steps run ahead of
        # the device (no host sync in a step): the epoch ends when its queued work has.
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        seconds = time.perf_counter() - self._start
        values = {"time/epoch_s": seconds, "time/samples_per_s": self._samples / seconds}
        if self._counts_tokens:
            values["time/tokens_per_s"] = self._tokens / seconds
            peak = self.peak_flops or device_peak_flops(pl_module.device)
            if peak:
                # Per device: each process counts its own tokens.
                values["perf/mfu"] = pl_module.flops_per_token() * self._tokens / seconds / peak
        if pl_module.device.type == "cuda":
            values["memory/peak_gb"] = torch.cuda.max_memory_allocated(pl_module.device) / 2**30
        pl_module.log_dict(values)
