"""A callback for tests that send signals to a training process: it slows each training batch
down and writes the progress to a file, so the test knows when training is mid-epoch."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import lightning as L


class Pace(L.Callback):
    def __init__(self, progress_file: str, seconds_per_batch: float = 0.02):
        self.progress_file = Path(progress_file)
        self.seconds_per_batch = seconds_per_batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        time.sleep(self.seconds_per_batch)
        self.progress_file.write_text(f"{trainer.current_epoch} {batch_idx} {trainer.global_step}")


class SignalAt(L.Callback):
    """Sends this process `signal_name` after training batch `batch` of epoch `epoch`: a signal
    that arrives mid-epoch, as a user's Ctrl+C would."""

    def __init__(self, epoch: int, batch: int, signal_name: str = "SIGINT"):
        self.epoch, self.batch, self.signal_name = epoch, batch, signal_name

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            os.kill(os.getpid(), getattr(signal, self.signal_name))
