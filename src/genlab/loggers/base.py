"""The adapter every logger gets: how genlab names a run in it, and how images, text samples,
the config and the final files reach it. The base class leaves a logger genlab does not know
with Lightning's scalars alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from lightning.pytorch.loggers import Logger


@dataclass(frozen=True)
class TrackedRun:
    """A run as the trackers see it."""

    # The run in a tracker: its directory's name; a sweep's job: its number and overrides.
    name: str
    # The runs it is compared with: the config's `name` (model_data); a sweep's jobs: the sweep.
    group: str
    output_dir: Path
    in_sweep: bool = False
    tags: tuple[str, ...] = ()
    # run.json's "trackers" of an earlier segment of this run (a resume continues it there).
    earlier: dict[str, Any] = field(default_factory=dict)


class LoggerAdapter:
    """A Lightning logger as genlab uses it. Subclasses serve one logger class each."""

    logger_class: ClassVar[type[Logger]] = Logger
    # The logger's entry in run.json's "trackers".
    key: ClassVar[str] = ""

    def __init__(self, logger: Logger):
        self.logger = logger

    @classmethod
    def settings(cls, node: dict[str, Any], run: TrackedRun) -> dict[str, Any]:
        """Arguments genlab adds to the logger's config node when it builds the logger."""
        return {}

    @classmethod
    def problem(cls, node: dict[str, Any]) -> str | None:
        """What stops the logger from working (a server that does not answer), checked before
        the run starts."""
        return None

    def start(self, config: dict[str, Any], run: TrackedRun) -> dict[str, Any]:
        """Record the run's resolved config; return what run.json keeps to find the run here."""
        return {}

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An RGB image (height x width x 3, uint8)."""

    def log_texts(self, tag: str, rows: list[tuple[str, str]], step: int) -> None:
        """Text samples: (prompt, continuation) pairs."""

    def finish(self, metrics: dict[str, float], params: dict[str, Any], files: list[Path]) -> None:
        """At the end of a run: its final metrics (metrics.json), what tells it apart from its
        group (`genlab.run.metrics.hparams_of`) and its record files."""

    def close(self, status: str) -> None:
        """End the run here with genlab's status for it (completed, failed, interrupted,
        diverged) and release the logger's connection (a sweep runs its jobs in one
        process)."""

    def discard(self) -> None:
        """Remove the run here: it failed before it saved anything, and its run directory was
        removed (after `close`)."""
