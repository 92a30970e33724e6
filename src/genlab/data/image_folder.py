"""Any folder of images (faces, say), resized and center-cropped, decoded by DataLoader workers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from genlab.data.splits import SplitDataModule
from genlab.errors import GenlabError
from genlab.images import from_unit_range, resolve_value_range

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


class ImageFiles(Dataset):
    """Decodes, resizes and center-crops one file per item; label = its top-level subfolder."""

    def __init__(
        self,
        files: list[Path],
        labels: list[int],
        image_size: int,
        channels: int,
        value_range: tuple[float, float],
    ):
        from torchvision import transforms

        self.files, self.labels = files, labels
        self.mode = "L" if channels == 1 else "RGB"
        self.value_range = value_range
        self.transform = transforms.Compose(
            [
                transforms.Resize(image_size),
                transforms.CenterCrop(image_size),
                transforms.ToTensor(),
            ]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path = self.files[index]
        try:
            with Image.open(path) as image:
                pixels = self.transform(image.convert(self.mode))
        except OSError as err:
            raise GenlabError(f"cannot decode image {path}: {err}; remove or replace it") from None
        return from_unit_range(pixels, self.value_range), self.labels[index]


class ImageFolderDataModule(SplitDataModule):
    """Images under `path` (searched recursively), split train/val/test by seeded fractions."""

    def __init__(
        self,
        path: str,
        image_size: int = 64,
        channels: int = 3,
        dims: Sequence[int] | None = None,
        batch_size: int = 128,
        num_workers: int = 2,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        split_seed: int = 42,
        value_range: str | Sequence[float] = "auto",
    ):
        super().__init__()
        self.path = Path(path)
        self.dims = (channels, image_size, image_size)
        if dims is not None and tuple(dims) != self.dims:
            raise GenlabError(
                f"data.dims={list(dims)} but image_folder makes {list(self.dims)} images "
                f"(data.channels, data.image_size): leave data.dims to its default"
            )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.fractions = (val_fraction, test_fraction)
        self.split_seed = split_seed
        self.value_range = value_range
        self.splits: dict[str, ImageFiles] = {}

    def _files(self) -> tuple[list[Path], list[int]]:
        if not self.path.is_dir():
            raise GenlabError(f"data.path={self.path} is not a folder of images")
        files = sorted(p for p in self.path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise GenlabError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {self.path}")
        classes = sorted(
            {p.relative_to(self.path).parts[0] for p in files if p.parent != self.path}
        )
        index = {name: i for i, name in enumerate(classes)}
        self.num_classes = max(1, len(classes))
        labels = [index.get(p.relative_to(self.path).parts[0], 0) for p in files]
        return files, labels

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        files, labels = self._files()
        n = len(files)
        n_val, n_test = (max(1, round(n * f)) for f in self.fractions)
        if n - n_val - n_test < 1:
            raise GenlabError(f"{self.path} has {n} images: too few to split train/val/test")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        parts = {
            "val": order[:n_val],
            "test": order[n_val : n_val + n_test],
            "train": order[n_val + n_test :],
        }
        value_range = resolve_value_range(self.value_range, self.trainer)
        for name, indices in parts.items():
            self.splits[name] = ImageFiles(
                [files[i] for i in indices],
                [labels[i] for i in indices],
                self.dims[1],
                self.dims[0],
                value_range,
            )

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )
