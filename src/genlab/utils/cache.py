"""Files genlab derives once and reuses (token ids, FID feature classifiers): loaded safely."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from genlab.utils.atomic import replace_atomically

log = logging.getLogger(__name__)


def load_cached(path: Path) -> Any | None:
    """The cached object at `path`, or None when there is none or it is damaged.

    Loaded with `weights_only=True`: tensors and plain types only, never code from the file. A
    damaged or foreign file (a run killed while writing it, a file from elsewhere) is deleted and
    rebuilt by the caller, since everything here can be derived again.
    """
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        log.warning("ignoring the damaged cache file %s (%s): rebuilding it", path, reason)
        path.unlink(missing_ok=True)
        return None


def save_cached(obj: Any, path: Path) -> None:
    """Write through a temporary file, so a reader never sees half a file."""
    replace_atomically(path, lambda tmp: torch.save(obj, tmp))
