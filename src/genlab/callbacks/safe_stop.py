"""Stopping safely: SIGTERM and Ctrl+C save a resumable checkpoint, NaN weights are never saved."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from genlab.errors import DIVERGENCE_HINT, TrainingDiverged
from genlab.models.base import GenlabModule


class SafeStop(L.Callback):
    """Turns a stop request into a checkpoint that resumes where training stopped.

    SIGTERM (a cluster preempting the job): Lightning notes it and stops at the next batch
    boundary by raising SIGTERMException; this callback then saves `last.ckpt` with the whole
    training state, mid-epoch included, so `ckpt_path=last` continues from there. SIGINT (Ctrl+C)
    takes the same route; a second Ctrl+C stops at once, without a checkpoint. `signal` and
    `saved` tell the caller what happened.

    Divergence: a checkpoint whose weights are not all finite is never written (the save raises
    TrainingDiverged instead), and a TrainingDiverged is told which checkpoint is the last good.
    `dirpath` is where `last.ckpt` goes when no ModelCheckpoint says otherwise.
    """

    def __init__(self, dirpath: str | Path):
        self.dirpath = Path(dirpath)
        self.signal: str | None = None
        self.saved: Path | None = None
        self._previous_sigint: Any = None

    def last_path(self, trainer: L.Trainer) -> Path:
        callback = trainer.checkpoint_callback
        folder = Path(callback.dirpath) if callback and callback.dirpath else self.dirpath
        return folder / f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Installed here, after Lightning has saved the process's handlers (it restores them all
        # when the run ends, which would otherwise bring this one back).
        if threading.current_thread() is threading.main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore_sigint()

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def _on_sigint(self, signum: int, frame: Any) -> None:
        lightning_handler = signal.getsignal(signal.SIGTERM)
        if self.signal == "SIGINT" or not callable(lightning_handler):
            raise KeyboardInterrupt
        self.signal = "SIGINT"
        print(
            "genlab: stopping after this batch to save a checkpoint (Ctrl+C again: quit now)",
            file=sys.stderr,
            flush=True,
        )
        lightning_handler(signal.SIGTERM, frame)  # Lightning's notifier: stop at the batch end

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore_sigint()
        if isinstance(exception, TrainingDiverged):
            last = self.last_path(trainer)
            exception.last_checkpoint = str(last) if last.is_file() else None
        elif isinstance(exception, KeyboardInterrupt):
            self.signal = "SIGINT"
        elif isinstance(exception, SIGTERMException):
            self.signal = self.signal or "SIGTERM"
            if trainer.state.fn == TrainerFn.FITTING:
                path = self.last_path(trainer)
                trainer.save_checkpoint(path, weights_only=False)
                self.saved = path

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        params = [p.detach() for p in pl_module.parameters()]
        if not params or bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            return
        name = next(n for n, p in pl_module.named_parameters() if not torch.isfinite(p).all())
        hint = pl_module.divergence_hint if isinstance(pl_module, GenlabModule) else DIVERGENCE_HINT
        raise TrainingDiverged(
            f"weight {name}", "non-finite", trainer.global_step, trainer.current_epoch, hint
        )
