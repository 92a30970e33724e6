"""Where the TensorBoard callbacks write: the run's TensorBoard logger, on rank 0, after sanity."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger


def tensorboard_logger(trainer: L.Trainer) -> TensorBoardLogger | None:
    """The TensorBoard logger to draw to now, or None (none configured, not rank 0, or the
    sanity check, whose throwaway epoch would add a step-0 point to every plot)."""
    if trainer.sanity_checking or not trainer.is_global_zero:
        return None
    return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)


def logging_step(trainer: L.Trainer) -> int:
    """The step Lightning logs scalars at (batches that stepped), so figures line up with the
    curves; `global_step` counts optimizer steps, two or more per batch for a GAN."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped
