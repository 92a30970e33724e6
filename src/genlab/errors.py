"""User-facing errors: bad config or data, reported as one line instead of a traceback."""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class GenlabError(Exception):
    """A problem the user can fix (missing data, bad value); the message says how.

    A message of several lines reports several problems: each becomes its own error line.
    """


class FileWriteError(GenlabError, OSError):
    """A file could not be written (disk full, no permission): the message names the file."""


# OS errors that say the user's disk or permissions are the problem, not genlab.
_STORAGE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM)

DIVERGENCE_HINT = "Lower the learning rate or clip gradients (trainer.gradient_clip_val)"


class TrainingDiverged(GenlabError):
    """A loss (or a weight) became NaN or infinite: training stops before it reaches a checkpoint.

    `last_checkpoint` is filled in by the SafeStop callback, which knows where checkpoints go.
    """

    def __init__(self, what: str, value: float | str, step: int, epoch: int, hint: str):
        super().__init__(what, value, step, epoch, hint)
        self.what, self.value, self.step, self.epoch, self.hint = what, value, step, epoch, hint
        self.last_checkpoint: str | None = None

    def __str__(self) -> str:
        kept = (
            f"last good checkpoint: {self.last_checkpoint}"
            if self.last_checkpoint
            else "no checkpoint was saved before it"
        )
        return (
            f"{self.what} became {self.value} at step {self.step} (epoch {self.epoch}); training "
            f"stopped, {kept}. {self.hint}"
        )


class RunInterrupted(SystemExit):
    """SIGINT, SIGTERM or a cluster's notice (SIGUSR2) stopped the run; exits with 128 + the
    signal number, like a shell.

    A SystemExit, not an Exception: a preempted sweep must stop, not go on to its next job.
    `hand_over`: what the cluster asked to run after the checkpoint (submitit's requeue).
    """

    hand_over: Callable[[], object] | None = None


EXIT_USER_ERROR = 2


@contextmanager
def user_errors_exit() -> Iterator[None]:
    """Turn a GenlabError into `genlab: error: ...` on stderr and exit code 2.

    Set HYDRA_FULL_ERROR=1 to get the full traceback instead.
    """
    try:
        yield
    except Exception as err:
        cause = find_user_error(err)
        if cause is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        for line in error_lines(cause):
            print(f"genlab: error: {line}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USER_ERROR) from None


def error_lines(err: GenlabError) -> list[str]:
    """The message's lines. A DataLoader worker re-raises its error with the worker's traceback
    in the message: only that traceback's last line (the original message) is kept."""
    text = str(err)
    if "\nOriginal Traceback" in text:
        last = text.rstrip().splitlines()[-1]
        text = re.sub(r"^[\w.]+: ", "", last)
    return [line for line in text.splitlines() if line.strip()]


def find_user_error(err: BaseException | None) -> GenlabError | None:
    """The GenlabError behind `err`, also when Hydra's instantiate wrapped it in its own error;
    a full disk or a missing permission anywhere (a logger's file, say) counts as one."""
    while err is not None:
        if isinstance(err, GenlabError):
            return err
        if isinstance(err, OSError) and err.errno in _STORAGE_ERRORS:
            where = f" {err.filename}" if err.filename else ""
            return FileWriteError(f"cannot write{where}: {err.strerror or err}")
        err = err.__cause__
    return None
