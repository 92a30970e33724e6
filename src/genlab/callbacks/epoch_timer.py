"""Throughput per training epoch: wall time (train + val), samples per second, peak memory."""

from __future__ import annotations

import time

import lightning as L
import torch


class EpochTimer(L.Callback):
    """Logs `time/epoch_s`, `time/samples_per_s` and, on CUDA, `memory/peak_gb` each epoch.

    They go to the loggers (TensorBoard), not to metrics.json, which stays reproducible.
    """

    def __init__(self):
        self._start = 0.0
        self._samples = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._samples = 0
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._samples += len(batch[0])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation has already run inside the epoch when this hook fires.
        seconds = time.perf_counter() - self._start
        values = {"time/epoch_s": seconds, "time/samples_per_s": self._samples / seconds}
        if pl_module.device.type == "cuda":
            values["memory/peak_gb"] = torch.cuda.max_memory_allocated(pl_module.device) / 2**30
        pl_module.log_dict(values)
