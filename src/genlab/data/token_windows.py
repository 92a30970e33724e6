"""Training examples of a language model: windows of block_size + 1 consecutive tokens, as
(inputs, targets) = (w[:-1], w[1:]), so every one of the block_size positions is predicted.

Windows are read from a token array (a `TokenFile`, which maps the token file for each read:
only the windows a batch asks for are read), at fixed starts (blocks one after the other, or
starts drawn once), or at starts drawn afresh for every batch (`RandomWindows`, nanoGPT's
`get_batch`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

Batch = tuple[torch.Tensor, torch.Tensor]


class TokenWindows(Dataset):
    """Window i starts at `starts[i]`, or at i * `stride` (every start that fits, when
    `stride` is 1; one block after the other, each sharing its last token with the next one's
    first, when `stride` is block_size). No window reads past the end of `tokens`."""

    def __init__(
        self,
        tokens: np.ndarray,
        block_size: int,
        stride: int | None = None,
        starts: np.ndarray | None = None,
    ):
        if (stride is None) == (starts is None):
            raise ValueError("give exactly one of stride and starts")
        self.tokens, self.block_size = tokens, block_size
        self.stride, self.starts = stride, starts
        self.last_start = len(tokens) - block_size - 1  # the window's last token is the last one

    def __len__(self) -> int:
        if self.starts is not None:
            return len(self.starts)
        return max(0, self.last_start // self.stride + 1)

    def start(self, indices: np.ndarray) -> np.ndarray:
        if self.starts is not None:
            return self.starts[indices]
        return indices * self.stride

    def windows(self, starts: np.ndarray) -> np.ndarray:
        """The (n, block_size + 1) tokens at these starts, as int64."""
        starts = np.asarray(starts, dtype=np.int64)
        if starts.size and (starts.min() < 0 or starts.max() > self.last_start):
            raise IndexError(f"window starts must lie in [0, {self.last_start}]")
        offsets = np.arange(self.block_size + 1, dtype=np.int64)
        return np.asarray(self.tokens[starts[:, None] + offsets], dtype=np.int64)

    def __getitems__(self, indices: list[int]) -> Batch:
        """A whole batch in one read (the DataLoader's collate_fn keeps it as is)."""
        window = torch.from_numpy(self.windows(self.start(np.asarray(indices, dtype=np.int64))))
        return window[:, :-1].contiguous(), window[:, 1:].contiguous()

    def __getitem__(self, index: int) -> Batch:
        inputs, targets = self.__getitems__([index])
        return inputs[0], targets[0]


class RandomWindows(Sampler[int]):
    """Indices of a `TokenWindows` with stride 1 (so the index is the start), `batch_size` of
    them drawn uniformly for each of `batches` batches from torch's random numbers (`seed`
    repeats them): nanoGPT's `torch.randint(len(data) - block_size, (batch_size,))`."""

    def __init__(self, n_starts: int, batch_size: int, batches: int):
        self.n_starts, self.batch_size, self.batches = n_starts, batch_size, batches

    def __len__(self) -> int:
        return self.batch_size * self.batches

    def __iter__(self) -> Iterator[int]:
        for _ in range(self.batches):
            yield from torch.randint(self.n_starts, (self.batch_size,)).tolist()


def drawn_windows(tokens: np.ndarray, block_size: int, count: int, seed: int) -> TokenWindows:
    """`count` windows at random starts drawn once from `seed`: the same every time, so
    evaluations on them compare."""
    n_starts = len(tokens) - block_size
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(n_starts, (count,), generator=generator).numpy()
    return TokenWindows(tokens, block_size, starts=starts)
