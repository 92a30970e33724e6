"""Wall time per training epoch (train + validation), for throughput comparisons."""

from __future__ import annotations

import time

import lightning as L


class EpochTimer(L.Callback):
    """Logs `time/epoch_s` (this epoch) and `time/epoch_s_mean` (the mean so far)."""

    def __init__(self):
        self._start = 0.0
        self._durations: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation has already run inside the epoch when this hook fires.
        self._durations.append(time.perf_counter() - self._start)
        mean = sum(self._durations) / len(self._durations)
        pl_module.log_dict({"time/epoch_s": self._durations[-1], "time/epoch_s_mean": mean})
