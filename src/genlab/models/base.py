"""Plumbing shared by every genlab LightningModule: configured optimizers and per-stage logging."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import lightning as L
import torch

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


class GenlabModule(L.LightningModule):
    """Subclasses implement `compute_losses`; this logs `{stage}/{name}` and minimizes "loss".

    Epoch metrics are exact per-example means over the whole split (and over all ranks): losses
    are summed here, weighted by batch size, and logged once per epoch. Calling `self.log` for
    every metric on every batch costs about a millisecond each in Lightning, a large share of a
    small model's step; training values per step go to the loggers every `log_every_n_steps`
    as `train/{name}_step`.

    `optimizer` and `scheduler` are partials from the config (`_partial_: true`), called here
    with the parameters and the optimizer, so no optimizer is hard-coded in a model.
    """

    def __init__(
        self,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str = "val/loss",
    ):
        super().__init__()
        self.optimizer_factory = optimizer or partial(torch.optim.Adam, lr=1e-3)
        self.scheduler_factory = scheduler
        self.scheduler_monitor = scheduler_monitor
        self._epoch_sums: dict[str, tuple[dict[str, torch.Tensor], int]] = {}

    def compute_losses(self, batch, stage: str) -> dict[str, torch.Tensor]:
        """Scalar losses for one batch; must contain "loss", the value that is minimized."""
        raise NotImplementedError

    def _step(self, batch, stage: str) -> torch.Tensor:
        losses = self.compute_losses(batch, stage)
        size = batch[0].size(0)
        sums, count = self._epoch_sums.get(stage, ({}, 0))
        for name, value in losses.items():
            weighted = value.detach().float() * size
            sums[name] = sums[name] + weighted if name in sums else weighted
        self._epoch_sums[stage] = (sums, count + size)
        if stage == "train" and (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            step_values = {f"train/{name}_step": value.detach() for name, value in losses.items()}
            self.log_dict(step_values, on_step=True, on_epoch=False)
            self.log("loss", losses["loss"].detach(), prog_bar=True, logger=False, on_step=True)
        return losses["loss"]

    def _log_epoch_means(self, stage: str) -> None:
        if stage not in self._epoch_sums:
            return
        sums, count = self._epoch_sums.pop(stage)
        totals = torch.stack([*sums.values(), torch.tensor(float(count), device=self.device)])
        totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        means = {f"{stage}/{name}": totals[i] / totals[-1] for i, name in enumerate(sums)}
        self.log_dict(means, on_step=False, on_epoch=True, prog_bar=stage == "val")

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_epoch_means("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_means("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_means("test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.scheduler_monitor},
        }
