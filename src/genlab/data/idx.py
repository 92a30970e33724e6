"""Reading MNIST-style IDX files (raw or gzipped), with errors that say what to do."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from genlab.errors import GenlabError

_UBYTE = 0x08


def find_idx(name: str, folders: Sequence[Path]) -> Path | None:
    """First `name` or `name.gz` found in `folders`, in order."""
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_idx(path: Path) -> torch.Tensor:
    """An unsigned-byte IDX file as a uint8 tensor of the shape its header declares."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise GenlabError(f"cannot read {path}: {err}; delete it and fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE:
        raise GenlabError(f"{path} is not an unsigned-byte IDX file (bad header); fetch it again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise GenlabError(f"{path} is truncated inside its header; fetch it again")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise GenlabError(
            f"{path} is truncated or corrupt: its header promises {expected} bytes for shape "
            f"{list(shape)}, the file has {len(raw)}; delete it and fetch it again"
        )
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy())
