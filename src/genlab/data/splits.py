"""The train/val/test plumbing every genlab datamodule shares."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from lightning.pytorch.utilities.data import _update_dataloader
from torch.utils.data import DataLoader, SequentialSampler

from genlab.errors import GenlabError


class SplitDataModule(L.LightningDataModule):
    """Subclasses fill `self.splits` in `setup` and build one loader in `loader(split, shuffle)`;
    training batches are shuffled, validation and test batches come in a fixed order.

    Under DDP every validation and test example is seen exactly once: each rank takes every
    N-th example, with no padding (Lightning's DistributedSampler would repeat a few examples
    to even out the ranks, and they would count twice in the epoch means). The models reduce
    sums and counts across ranks, so uneven shares give the same metrics as one process.
    """

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        """What is wrong with a resolved config for this datamodule that no single key shows, one
        line each, checked before anything is built (`genlab.config.checks`). Subclasses add
        their own rules to these."""
        data = config.get("data") or {}
        val, test = data.get("val_fraction"), data.get("test_fraction")
        if isinstance(val, (int, float)) and isinstance(test, (int, float)) and val + test >= 1:
            return [
                f"data.val_fraction={val} + data.test_fraction={test} leave no training "
                f"examples: keep their sum below 1 (e.g. 0.1 each)"
            ]
        return []

    # What its batches hold, matched against the model's `data_kind` by the config checks.
    data_kind = "images"

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")

    def _evaluation_loader(self, split: str) -> DataLoader:
        loader = self.loader(split, shuffle=False)
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return loader
        if not isinstance(loader.sampler, SequentialSampler):
            return loader  # a loader with its own sampler: Lightning's default applies
        if len(loader.dataset) < trainer.world_size:
            # A rank with nothing to evaluate would skip the epoch's reduction: the others hang.
            raise GenlabError(
                f"the {split} split has {len(loader.dataset)} examples, fewer than the "
                f"{trainer.world_size} processes: give it more data or run on fewer devices"
            )
        sampler = UnrepeatedDistributedSamplerWrapper(
            loader.sampler, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )
        return _update_dataloader(loader, sampler)
