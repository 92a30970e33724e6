"""Base for image sets that fit in memory: tensors sliced a whole batch at a time."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch
from torch.utils.data import DataLoader, Dataset

from genlab.data.augment import AugmentBatch, check_augment
from genlab.data.splits import SplitDataModule
from genlab.errors import GenlabError
from genlab.utils.devices import to_device_async
from genlab.utils.pixels import from_unit_range, pixel_range

log = logging.getLogger(__name__)

Split = tuple[torch.Tensor, torch.Tensor]
# data.on_device=auto holds the images on the accelerator when all splits take at most this share
# of its free memory (the rest is the model's, its activations' and the optimizer's).
AUTO_DEVICE_SHARE = 0.25


class TensorBatches(Dataset):
    """Images and labels held as tensors.

    The DataLoader fetches a batch with one `__getitems__` call (one fancy index per tensor)
    instead of per-sample `__getitem__`, PIL conversion and collation, which is most of an
    MLP epoch's time in the classic `transforms.ToTensor()` pipeline.

    With `value_range`, `images` are uint8 pixels (0..255, a quarter of the memory of floats)
    and what is fetched is converted to floats in `value_range`, a batch at a time: looked up in
    a table of the 256 values made once on the host, so that they are the same numbers wherever
    the images are held (CUDA divides by a constant as a multiplication by its reciprocal,
    which rounds otherwise).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        value_range: tuple[float, float] | None = None,
    ):
        self.images = images
        self.labels = labels
        self.pixel_values = None
        if value_range is not None:
            levels = torch.arange(256, dtype=torch.float32).div_(255.0)
            self.pixel_values = from_unit_range(levels, value_range)

    def __len__(self) -> int:
        return len(self.images)

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        return images if self.pixel_values is None else self.pixel_values[images.int()]

    @property
    def nbytes(self) -> int:
        return self.images.nbytes + self.labels.nbytes

    def to(self, device: torch.device) -> None:
        """Hold the tensors on `device`: batches are then sliced there."""
        self.images, self.labels = self.images.to(device), self.labels.to(device)
        if self.pixel_values is not None:
            self.pixel_values = self.pixel_values.to(device)

    def __getitem__(self, index: int) -> Split:
        return self._pixels(self.images[index]), self.labels[index]

    def __getitems__(self, indices: list[int]) -> Split:
        index = to_device_async(torch.as_tensor(indices), self.images.device)
        return self._pixels(self.images[index]), self.labels[index]


def keep_batch(batch: Split) -> Split:
    """collate_fn for `TensorBatches`: the fetched batch is already stacked."""
    return batch


def check_on_device(on_device: bool | str) -> bool | str:
    """`data.on_device` as True, False or "auto", or one error line."""
    if on_device is True or on_device is False or on_device == "auto":
        return on_device
    raise GenlabError(
        f"data.on_device={on_device}: use auto (a CUDA GPU's memory when the images fit in a "
        f"quarter of what is free), true (the accelerator's) or false (host memory)"
    )


def holding_device(on_device: bool | str, device: torch.device, nbytes: int) -> torch.device:
    """Where in-memory images of `nbytes` are held for a run on `device`: there when
    `on_device` says so (auto: on a CUDA device, when they take at most `AUTO_DEVICE_SHARE` of
    its free memory), else in host memory."""
    host = torch.device("cpu")
    if device.type == "cpu" or on_device is False:
        return host
    if on_device is True:
        return device
    if device.type != "cuda":
        return host
    free, _ = torch.cuda.mem_get_info(device)
    # Memory PyTorch's allocator holds but does not use is free to it too.
    free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return device if nbytes <= AUTO_DEVICE_SHARE * free else host


def split_tensors(split: Split, sizes: Sequence[int], seed: int) -> list[Split]:
    """Shuffle with a fixed seed and cut into consecutive parts of the given sizes."""
    images, labels = split
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    parts, start = [], 0
    for size in sizes:
        index = order[start : start + size]
        parts.append((images[index], labels[index]))
        start += size
    return parts


class InMemoryImageDataModule(SplitDataModule):
    """Loads train/val/test once as images of shape (N, *dims), batches in `value_range`.

    Subclasses implement `load_splits`: float images in [0, 1], held as floats in `value_range`,
    or uint8 pixels (0..255), held as uint8 and converted a batch at a time. `dims` comes from
    the config so that models can be sized from it (`${data.dims}`); it is checked against the
    data loaded.
    `value_range` is the model's (`${model.value_range}` in the configs: [0, 1] for the
    autoencoders' BCE, [-1, 1] for a GAN's Tanh). `augment` names the augmentations of
    training batches (`genlab.data.augment`; validation and test batches are never augmented).
    `on_device` (True, False, "auto"): hold the splits in the accelerator's memory (a run's
    `trainer.strategy.root_device`), so batches are sliced there with no copy from the host per
    batch; the order of the batches is the same wherever they are held.
    """

    def __init__(
        self,
        dims: Sequence[int],
        batch_size: int = 128,
        split_seed: int = 42,
        value_range: Sequence[float] = (0.0, 1.0),
        augment: Sequence[str] = (),
        on_device: bool | str = "auto",
    ):
        super().__init__()
        self.dims = tuple(dims)
        self.batch_size = batch_size
        self.split_seed = split_seed
        self.value_range = pixel_range(value_range)
        self.augment = check_augment(augment)
        self.on_device = check_on_device(on_device)
        self.splits: dict[str, TensorBatches] = {}

    @property
    def num_classes(self) -> int:
        return int(self.splits["train"].labels.max()) + 1

    def identity(self) -> str:
        """Which data this is, for caches derived from it: kind, files and split."""
        return f"{type(self).__name__}|{self.location()}|{self.split_seed}"

    def location(self) -> str:
        """Where the images come from (a folder), or "" for bundled data."""
        return ""

    def load_splits(self) -> dict[str, Split]:
        """Return {"train", "val", "test"} -> (images float in [0, 1] or uint8, labels)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self._load()
        run_device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        if self.splits["train"].images.device == run_device:
            return  # held there already (by fit, before a test): not weighed again
        nbytes = sum(split.nbytes for split in self.splits.values())
        device = holding_device(self.on_device, run_device, nbytes)
        if self.splits["train"].images.device != device:
            log.info("holding the images (%.0f MB) on %s", nbytes / 2**20, device)
            for split in self.splits.values():
                split.to(device)

    def _load(self) -> None:
        for name, (images, labels) in self.load_splits().items():
            if tuple(images.shape[1:]) != self.dims:
                raise GenlabError(
                    f"data.dims={list(self.dims)} but the {name} images have shape "
                    f"{list(images.shape[1:])}: set data.dims to match"
                )
            if images.dtype == torch.uint8:
                self.splits[name] = TensorBatches(images.contiguous(), labels, self.value_range)
                continue
            images = from_unit_range(images, self.value_range)
            self.splits[name] = TensorBatches(images.contiguous(), labels)

    def loader(self, split: str, shuffle: bool, augment: bool = False) -> DataLoader:
        """One split's batches; `augment`: with `self.augment` applied (the training loader's)."""
        collate = AugmentBatch(self.augment) if augment and self.augment else keep_batch
        return DataLoader(
            self.splits[split], batch_size=self.batch_size, shuffle=shuffle, collate_fn=collate
        )

    def train_dataloader(self) -> DataLoader:
        return self.resumable(self.loader("train", shuffle=True, augment=True))


class OfficialSplitDataModule(InMemoryImageDataModule):
    """An image dataset in `data_dir` with an official train/test split (MNIST's, CIFAR-10's):
    the train set minus a seeded validation split of `val_size`, and the official test set;
    `download` fetches it into `data_dir` (through torchvision). Subclasses find and read the
    files (`load_splits`)."""

    title: ClassVar[str] = ""
    default_dims: ClassVar[tuple[int, ...]] = ()

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = False,
        dims: Sequence[int] | None = None,
        batch_size: int = 128,
        val_size: int = 5000,
        split_seed: int = 42,
        value_range: Sequence[float] = (0.0, 1.0),
        augment: Sequence[str] = (),
        on_device: bool | str = "auto",
    ):
        dims = self.default_dims if dims is None else dims
        super().__init__(dims, batch_size, split_seed, value_range, augment, on_device)
        self.data_dir = Path(data_dir)
        self.download = download
        self.val_size = val_size

    def location(self) -> str:
        return str(self.data_dir.resolve())

    def split_off_validation(self, fit: Split) -> tuple[Split, Split]:
        """The official train set as (train, val): `val_size` images drawn with `split_seed`."""
        n = len(fit[0])
        if not 0 < self.val_size < n:
            raise GenlabError(
                f"data.val_size={self.val_size} must be between 1 and {n - 1} "
                f"(the {self.title} train set has {n} images)"
            )
        train, val = split_tensors(fit, [n - self.val_size, self.val_size], self.split_seed)
        return train, val
