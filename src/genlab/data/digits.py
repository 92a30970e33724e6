"""scikit-learn's bundled 8x8 handwritten digits: runs offline, an epoch in well under a second."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genlab.data.in_memory import InMemoryImageDataModule, Split, split_tensors


class DigitsDataModule(InMemoryImageDataModule):
    """1797 images of 1x8x8, scaled from 0..16 to [0, 1], split train/val/test with `split_seed`."""

    def __init__(
        self,
        dims: Sequence[int] = (1, 8, 8),
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        value_range: Sequence[float] = (0.0, 1.0),
        augment: Sequence[str] = (),
        on_device: bool | str = "auto",
    ):
        super().__init__(dims, batch_size, split_seed, value_range, augment, on_device)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def load_splits(self) -> dict[str, Split]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        labels = torch.tensor(digits.target, dtype=torch.long)
        n = len(images)
        n_val, n_test = round(n * self.val_fraction), round(n * self.test_fraction)
        train, val, test = split_tensors(
            (images, labels), [n - n_val - n_test, n_val, n_test], self.split_seed
        )
        return {"train": train, "val": val, "test": test}
