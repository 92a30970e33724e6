"""Stopping safely: SIGTERM and Ctrl+C save a resumable checkpoint, NaN weights are never saved."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from genlab.errors import DIVERGENCE_HINT, TrainingDiverged
from genlab.models.base import GenlabModule


def preemption_signal() -> signal.Signals:
    """The signal a cluster job gets before it is preempted or runs out of time: submitit's
    (SIGUSR2, or what SUBMITIT_PREEMPT_SIGNAL names), which genlab's SLURM launcher asks for."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, f"SIG{name}", signal.SIGUSR2)


class SafeStop(L.Callback):
    """Turns a stop request into a checkpoint that resumes where training stopped.

    SIGTERM (a cluster preempting the job): Lightning notes it and stops at the next batch
    boundary by raising SIGTERMException; this callback then saves `last.ckpt` with the whole
    training state, mid-epoch included, so `ckpt_path=last` continues from there. SIGINT (Ctrl+C)
    takes the same route; a second Ctrl+C stops at once, without a checkpoint. `signal` and
    `saved` tell the caller what happened.

    A cluster's notice of preemption or time-out (`preemption_signal`, submitit's SIGUSR2 unless
    SUBMITIT_PREEMPT_SIGNAL names another) takes the same route too; the handler that was there
    before (submitit's, which requeues the job) is kept in `hand_over`, for the caller to run
    once the checkpoint is saved and the run recorded as interrupted.

    Divergence: a checkpoint whose weights are not all finite is never written (the save raises
    TrainingDiverged instead), and a TrainingDiverged is told which checkpoint is the last good.
    `dirpath` is where `last.ckpt` goes when no ModelCheckpoint says otherwise.
    """

    def __init__(self, dirpath: str | Path):
        self.dirpath = Path(dirpath)
        self.signal: str | None = None
        self.saved: Path | None = None
        self.hand_over: Callable[[], Any] | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def last_path(self, trainer: L.Trainer) -> Path:
        callback = trainer.checkpoint_callback
        folder = Path(callback.dirpath) if callback and callback.dirpath else self.dirpath
        return folder / f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Installed here, after Lightning has saved the process's handlers (it restores them all
        # when the run ends, which would otherwise bring this one back).
        if threading.current_thread() is threading.main_thread():
            for signum, handler in (
                (signal.SIGINT, self._on_sigint),
                (preemption_signal(), self._on_preemption),
            ):
                self._previous[signum] = signal.signal(signum, handler)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.signal == "SIGINT" or not self._stop_after_batch(frame):
            raise KeyboardInterrupt
        self.signal = "SIGINT"
        print(
            "genlab: stopping after this batch to save a checkpoint (Ctrl+C again: quit now)",
            file=sys.stderr,
            flush=True,
        )

    def _on_preemption(self, signum: int, frame: Any) -> None:
        previous = self._previous.get(signal.Signals(signum))
        if callable(previous):
            self.hand_over = lambda: previous(signum, None)
        self.signal = signal.Signals(signum).name
        print(
            f"genlab: {self.signal} (the cluster ends this job soon): stopping after this batch "
            f"to save a checkpoint",
            file=sys.stderr,
            flush=True,
        )
        self._stop_after_batch(frame)

    @staticmethod
    def _stop_after_batch(frame: Any) -> bool:
        """Lightning's SIGTERM notifier: it stops training at the end of the batch."""
        lightning_handler = signal.getsignal(signal.SIGTERM)
        if not callable(lightning_handler):
            return False
        lightning_handler(signal.SIGTERM, frame)
        return True

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore_handlers()
        if isinstance(exception, TrainingDiverged):
            last = self.last_path(trainer)
            exception.last_checkpoint = str(last) if last.is_file() else None
        elif isinstance(exception, KeyboardInterrupt):
            self.signal = "SIGINT"
        elif isinstance(exception, SIGTERMException):
            self.signal = self.signal or "SIGTERM"
            if trainer.state.fn == TrainerFn.FITTING:
                path = self.last_path(trainer)
                callback = trainer.checkpoint_callback
                if isinstance(callback, ModelCheckpoint):
                    # Its own last.ckpt: a resumed run overwrites it (not last-v1.ckpt beside it).
                    callback.last_model_path = str(path)
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
