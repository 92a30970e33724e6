"""The train/val/test plumbing every genlab datamodule shares."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from lightning.pytorch.utilities.data import _update_dataloader
from torch.utils.data import DataLoader, RandomSampler, Sampler, SequentialSampler

from genlab.errors import GenlabError


class EpochShuffle(Sampler[int]):
    """A permutation of range(n) drawn from (`seed`, the epoch) (Lightning calls `set_epoch`),
    as DistributedSampler orders its epochs; the first `skip` indices of the next pass are left
    out (once: a run resumed in the middle of an epoch)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch, self.skip = n, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        # Not seed + epoch: runs with seeds 1 and 2 would share orders an epoch apart.
        generator = torch.Generator().manual_seed(hash((self.seed, self.epoch)))
        start, self.skip = self.skip, 0
        yield from torch.randperm(self.n, generator=generator)[start:].tolist()


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
    # The training order's seed: the run's, taken at the first training loader; in checkpoints.
    _shuffle_seed: int | None = None

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self.resumable(self.loader("train", shuffle=True))

    def resumable(self, loader: DataLoader) -> DataLoader:
        """A shuffled training loader in `EpochShuffle`'s order: each epoch's a function of the
        run's shuffle seed and the epoch, so that a run resumed from a checkpoint (saved at an
        epoch's end or in its middle, as on preemption) sees the batches the uninterrupted run
        would have seen; in the middle of an epoch it starts after those already trained."""
        if not isinstance(loader.sampler, RandomSampler):
            return loader  # an order of its own (random windows)
        if self._shuffle_seed is None:  # the run's seed (seed_everything), or torch's own
            self._shuffle_seed = torch.initial_seed()
        order = EpochShuffle(len(loader.dataset), self._shuffle_seed)
        trainer = self.trainer
        if trainer is not None and trainer.world_size == 1 and loader.batch_size:
            progress = trainer.fit_loop.epoch_loop.batch_progress
            order.set_epoch(trainer.current_epoch)
            mid_epoch = progress.current.completed > 0 and not progress.is_last_batch
            if mid_epoch and progress.current.completed * loader.batch_size < len(order):
                order.skip = progress.current.completed * loader.batch_size
        return _update_dataloader(loader, order)

    def state_dict(self) -> dict[str, Any]:
        return {"shuffle_seed": self._shuffle_seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._shuffle_seed = state_dict.get("shuffle_seed")

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
