"""Wall time per training epoch (train + validation), for throughput comparisons."""

from __future__ import annotations

import time

import lightning as L


class EpochTimer(L.Callback):
    """Logs `time/epoch_s` each epoch, to the loggers (metrics.json stays reproducible)."""

    def __init__(self):
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation has already run inside the epoch when this hook fires.
        pl_module.log("time/epoch_s", time.perf_counter() - self._start)
