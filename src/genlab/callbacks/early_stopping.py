"""Early stopping that asks the model what "better" means, and says why it stopped."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping

from genlab.errors import GenlabError
from genlab.models.base import GenlabModule


class EarlyStop(EarlyStopping):
    """Lightning's EarlyStopping; with `monitor="auto"` it watches the model's
    `checkpoint_monitor` in its `checkpoint_mode` (val/loss, lowest first, for AE, VAE, GPT-2
    and seq2seq), the metric `best.ckpt` is chosen by. `why()` is what run.json records."""

    def __init__(self, monitor: str = "auto", mode: str = "min", **kwargs: Any):
        super().__init__(monitor=monitor, mode=mode, **kwargs)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.monitor == "auto":
            monitor = pl_module.checkpoint_monitor if isinstance(pl_module, GenlabModule) else None
            if monitor is None:  # the config checks refuse this first for genlab's models
                raise GenlabError(
                    "callbacks.early_stopping.monitor=auto: this model names no metric to "
                    "watch; set callbacks.early_stopping.monitor=<a logged metric>"
                )
            self.monitor, self.mode = monitor, pl_module.checkpoint_mode
            # What __init__ derived from the mode.
            self.min_delta = abs(self.min_delta) * (1 if self.monitor_op == torch.gt else -1)
            self.best_score = torch.tensor(torch.inf if self.mode == "min" else -torch.inf)
        super().setup(trainer, pl_module, stage)

    def why(self) -> dict[str, Any] | None:
        """How and when training was stopped early, or None if it was not."""
        if not self.stopping_reason_message:
            return None
        return {
            "reason": self.stopping_reason.name.lower(),
            "message": self.stopping_reason_message,
            "monitor": self.monitor,
            "patience": self.patience,
            "epoch": self.stopped_epoch,
            "best": float(self.best_score),
        }
