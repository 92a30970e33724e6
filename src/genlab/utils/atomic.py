"""Whole-file writes: a reader, or a process killed mid-write, sees the old file or the new one,
never half of one (metrics.json, run.json, checkpoints, caches, downloads)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from genlab.errors import FileWriteError


def replace_atomically(path: Path, write: Callable[[Path], object], durable: bool = False) -> None:
    """`write(tmp)` writes the new content to a temporary file that then replaces `path`.

    `durable=True` also flushes the file and the rename to disk (fsync) before returning, for
    files worth that cost (checkpoints). On any error the temporary file is removed; an OS error
    (disk full, no permission) becomes a FileWriteError that names `path`.
    """
    path = Path(path)
    # Hidden, beside the file (same file system: the rename is atomic), one per process.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        if durable:
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise FileWriteError(f"cannot write {path}: {err.strerror or err}") from err
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


def creation_problem(folder: Path) -> str | None:
    """Why `folder` cannot be made (or written into), or None."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None
