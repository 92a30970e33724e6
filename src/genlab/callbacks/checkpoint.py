"""ModelCheckpoint that asks the model what "best" means."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint


class BestCheckpoint(ModelCheckpoint):
    """With `monitor="auto"`, monitors the model's `checkpoint_monitor` in its `checkpoint_mode`.

    AE and VAE keep the lowest `val/loss`; a GAN has no validation loss that tracks sample
    quality, so it says None and `best.ckpt` is the latest epoch.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.monitor == "auto":
            self.monitor = getattr(pl_module, "checkpoint_monitor", "val/loss")
            self.mode = getattr(pl_module, "checkpoint_mode", "min")
            self.kth_value = torch.tensor(torch.inf if self.mode == "min" else -torch.inf)
        super().setup(trainer, pl_module, stage)
