"""The adapters genlab knows; those of a trainer's loggers that take images and text now, and
the step they log them at."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import Logger

from genlab.loggers.base import LoggerAdapter
from genlab.loggers.csv import CSVAdapter
from genlab.loggers.mlflow import MLflowAdapter
from genlab.loggers.tensorboard import TensorBoardAdapter
from genlab.loggers.wandb import WandbAdapter

# A new logger is one adapter here (and a config in conf/logger/).
ADAPTERS: tuple[type[LoggerAdapter], ...] = (
    TensorBoardAdapter,
    MLflowAdapter,
    WandbAdapter,
    CSVAdapter,
)


def adapter_class(logger_class: type) -> type[LoggerAdapter]:
    """The adapter of a logger class (or of a class it derives from); the base adapter, which
    passes on Lightning's scalars only, for one genlab does not know."""
    return next((a for a in ADAPTERS if issubclass(logger_class, a.logger_class)), LoggerAdapter)


def adapter(logger: Logger) -> LoggerAdapter:
    return adapter_class(type(logger))(logger)


def media_adapters(trainer: L.Trainer) -> list[LoggerAdapter]:
    """Adapters to hand images and text to now: none off rank 0, or in the sanity check (its
    throwaway epoch would add a step-0 point to every plot)."""
    if trainer.sanity_checking or not trainer.is_global_zero:
        return []
    return [adapter(logger) for logger in trainer.loggers]


def logging_step(trainer: L.Trainer) -> int:
    """The step Lightning logs scalars at (batches that stepped), so images line up with the
    curves; `global_step` counts optimizer steps, two or more per batch for a GAN."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped
