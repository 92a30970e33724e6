"""The train/val/test plumbing every genlab datamodule shares."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader


class SplitDataModule(L.LightningDataModule):
    """Subclasses fill `self.splits` in `setup` and build one loader in `loader(split, shuffle)`;
    training batches are shuffled, validation and test batches come in a fixed order."""

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", shuffle=False)
