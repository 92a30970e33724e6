"""Whole-file writes: a reader, or a process killed mid-write, sees the old file or the new one,
never half of one (metrics.json, run.json, checkpoints, caches, downloads)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: Path, write: Callable[[Path], object], durable: bool = False) -> None:
    """`write(tmp)` writes the new content to a temporary file that then replaces `path`.

    `durable=True` also flushes the file and the rename to disk (fsync) before returning, for
    files worth that cost (checkpoints). On any error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden, beside the file (same file system: the rename is atomic), one per process.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        if durable:
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); not every file system allows opening a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
