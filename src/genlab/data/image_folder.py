"""Any folder of images (faces, say), resized and center-cropped, decoded by DataLoader workers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from genlab.data.augment import AugmentBatch, check_augment
from genlab.data.splits import SplitDataModule
from genlab.errors import GenlabError
from genlab.utils.pixels import from_unit_range, pixel_range
from genlab.utils.progress import progress

log = logging.getLogger(__name__)

# What PIL raises for a damaged file (damage past the header only shows when decoding).
_PIL_ERRORS = (OSError, SyntaxError, ValueError)
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
        skip_bad: bool = False,
    ):
        from torchvision import transforms

        self.files, self.labels = files, labels
        self.skip_bad = skip_bad
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

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        from PIL import Image

        path = self.files[index]
        try:
            with Image.open(path) as image:
                pixels = self.transform(image.convert(self.mode))
        except (*_PIL_ERRORS, Image.DecompressionBombError) as err:
            if self.skip_bad:  # damage past the header only shows when decoding
                log.warning("skipping image %s: %s", path, err)
                return None
            raise GenlabError(
                f"cannot decode image {path}: {err}; remove or replace it, or skip such files "
                f"with data.on_bad_image=skip"
            ) from None
        return from_unit_range(pixels, self.value_range), self.labels[index]


def collate_skipping_none(batch: list) -> tuple[torch.Tensor, torch.Tensor]:
    """default_collate of the images that decoded (a skipped image is None)."""
    kept = [item for item in batch if item is not None]
    if not kept:
        raise GenlabError("no image of a whole batch could be decoded: check the image folder")
    return default_collate(kept)


def unreadable_images(files: list[Path]) -> list[tuple[Path, str]]:
    """Files whose image header does not open (empty, cut short, not an image), or that declare
    more pixels than PIL decodes safely (a decompression bomb: a tiny file that would take
    gigabytes), with the reason.

    Reads headers only: fast enough for a folder of many thousand images.
    """
    from PIL import Image

    bad = []
    if len(files) > 5000:
        log.info("checking the headers of %d images", len(files))
    for path in progress(files, len(files), "checking images"):
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (*_PIL_ERRORS, Image.DecompressionBombError) as err:
            bad.append((path, str(err) or type(err).__name__))
            continue
        if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
            bad.append((path, f"declares {width} x {height} pixels, more than PIL decodes safely"))
    return bad


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
        value_range: Sequence[float] = (0.0, 1.0),
        on_bad_image: str = "fail",
        augment: Sequence[str] = (),
    ):
        super().__init__()
        self.on_bad_image = on_bad_image
        self.augment = check_augment(augment)
        self.path = Path(path)
        self.dims = (channels, image_size, image_size)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.fractions = (val_fraction, test_fraction)
        self.split_seed = split_seed
        self.value_range = pixel_range(value_range)
        self.splits: dict[str, ImageFiles] = {}

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        data = config.get("data") or {}
        made = [data.get("channels"), data.get("image_size"), data.get("image_size")]
        if data.get("dims") is None or list(data["dims"]) == made:
            return super().config_problems(config)
        return [
            *super().config_problems(config),
            f"data.dims={list(data['dims'])} but image_folder makes {made} images "
            f"(data.channels, data.image_size): leave data.dims to its default",
        ]

    def identity(self) -> str:
        """Which data this is, for caches derived from it: kind, folder and split."""
        return f"{type(self).__name__}|{self.path.resolve()}|{self.split_seed}"

    def _files(self) -> tuple[list[Path], list[int]]:
        if not self.path.is_dir():
            raise GenlabError(f"data.path={self.path} is not a folder of images")
        files = sorted(p for p in self.path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise GenlabError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {self.path}")
        files = self._drop_unreadable(files)
        classes = sorted(
            {p.relative_to(self.path).parts[0] for p in files if p.parent != self.path}
        )
        loose = [p for p in files if p.parent == self.path]
        if classes and loose:  # they would have been labelled as the first class
            raise GenlabError(
                f"{len(loose)} images lie directly in {self.path} (first: {loose[0].name}) next "
                f"to class subfolders ({', '.join(classes)}): move them into a subfolder of "
                f"their class, or keep all images at the top for unlabelled data"
            )
        index = {name: i for i, name in enumerate(classes)}
        self.num_classes = max(1, len(classes))
        labels = [index.get(p.relative_to(self.path).parts[0], 0) for p in files]
        return files, labels

    def _drop_unreadable(self, files: list[Path]) -> list[Path]:
        bad = unreadable_images(files)
        if not bad:
            return files
        first, reason = bad[0]
        if self.on_bad_image == "fail":
            raise GenlabError(
                f"{len(bad)} of {len(files)} files under {self.path} are not readable images "
                f"(first: {first}: {reason}); remove them, or skip them with "
                f"data.on_bad_image=skip"
            )
        log.warning(
            "skipped %d of %d files under %s that are not readable images (first: %s: %s)",
            len(bad),
            len(files),
            self.path,
            first,
            reason,
        )
        dropped = {path for path, _ in bad}
        return [path for path in files if path not in dropped]

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
        for name, indices in parts.items():
            self.splits[name] = ImageFiles(
                [files[i] for i in indices],
                [labels[i] for i in indices],
                self.dims[1],
                self.dims[0],
                self.value_range,
                skip_bad=self.on_bad_image == "skip",
            )

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        collate = collate_skipping_none if self.on_bad_image == "skip" else default_collate
        if split == "train" and self.augment:
            collate = AugmentBatch(self.augment, collate)
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            collate_fn=collate,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )
