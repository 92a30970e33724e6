"""CelebA, aligned and cropped: JPEGs decoded once by DataLoader workers, then held in memory as
uint8 pixels and cached, so that later epochs and runs decode nothing."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from genlab.data.in_memory import InMemoryImageDataModule, Split
from genlab.errors import GenlabError
from genlab.utils.cache import load_cached, save_cached
from genlab.utils.progress import progress

log = logging.getLogger(__name__)

FOLDER = "celeba"
IMAGES = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
SITE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
SPLITS = {"0": "train", "1": "val", "2": "test"}
# Part of the cache key: changed whenever decoding gives other pixels, so old caches are not used.
DECODING = "center-square-pil-bilinear-v1"
# What PIL raises for a damaged file, or a missing one (damage past the header shows when
# decoding).
_BAD_IMAGE_ERRORS = (OSError, SyntaxError, ValueError)


def decode_face(path: Path, image_size: int) -> torch.Tensor:
    """One image as uint8 (3, image_size, image_size): its central square (178 x 178 of the
    aligned 178 x 218 faces, what the DCGAN tutorial's CenterCrop keeps), resized with PIL's
    antialiased bilinear filter (torchvision's CenterCrop(178) then Resize, on a PIL image)."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = int(round((width - side) / 2.0)), int(round((height - side) / 2.0))
    image = image.crop((left, top, left + side, top + side))
    if side != image_size:
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()


class FaceFiles(Dataset):
    """Decodes one file per item (in a DataLoader worker): (pixels, "") or, for a file that does
    not decode, (zeros, the reason), so that the main process names it."""

    def __init__(self, files: list[Path], image_size: int):
        self.files = files
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        from PIL import Image

        try:
            return decode_face(self.files[index], self.image_size), ""
        except (*_BAD_IMAGE_ERRORS, Image.DecompressionBombError) as err:
            empty = torch.zeros(3, self.image_size, self.image_size, dtype=torch.uint8)
            return empty, str(err).strip().splitlines()[0] if str(err).strip() else repr(err)


class CelebADataModule(InMemoryImageDataModule):
    """The official train/val/test partition (162,770 / 19,867 / 19,962 faces), unlabelled
    (every label 0), 3 x `image_size` x `image_size`.

    Files: `data_dir/celeba/img_align_celeba/*.jpg` and `data_dir/celeba/list_eval_partition.txt`
    (torchvision's layout; `data_dir` may also be the `celeba` folder itself). The first pass
    decodes them with `num_workers` DataLoader workers; with `cache`, each split's uint8 tensor
    is saved in `cache_dir` (keyed by the folder, the image size and the partition's file list)
    and later runs load it instead. `on_bad_image`: fail (stop, naming the file) or skip.
    """

    title = "CelebA"

    def __init__(
        self,
        data_dir: str = "data",
        image_size: int = 64,
        dims: Sequence[int] | None = None,
        batch_size: int = 128,
        num_workers: int = 2,
        cache: bool = True,
        cache_dir: str = ".cache/genlab",
        value_range: Sequence[float] = (0.0, 1.0),
        on_bad_image: str = "fail",
        augment: Sequence[str] = (),
        on_device: bool | str = "auto",
    ):
        made = (3, image_size, image_size)
        # The split is the official one: split_seed does not apply.
        dims = made if dims is None else dims
        super().__init__(dims, batch_size, 0, value_range, augment, on_device)
        self.data_dir = Path(data_dir)
        self.image_size = image_size
        self.num_workers = num_workers
        self.cache = cache
        self.cache_dir = Path(cache_dir)
        self.on_bad_image = on_bad_image
        self._decoded: dict[str, torch.Tensor] = {}

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        data, model = config.get("data") or {}, config.get("model") or {}
        problems = super().config_problems(config)
        made = [3, data.get("image_size"), data.get("image_size")]
        if data.get("dims") is not None and list(data["dims"]) != made:
            problems.append(
                f"data.dims={list(data['dims'])} but celeba makes {made} images "
                f"(data.image_size): leave data.dims to its default"
            )
        if ((model.get("eval") or {}).get("features")) == "classifier":
            problems.append(
                "model.eval.features=classifier: CelebA has no class labels to train the FID/KID "
                "feature classifier on; set model.eval.features=none, or inception"
            )
        return problems

    # Where the files are.

    def root(self) -> Path:
        """`data_dir/celeba`, or `data_dir` itself when it is the celeba folder."""
        for folder in (self.data_dir / FOLDER, self.data_dir):
            if (folder / PARTITION).is_file() or (folder / IMAGES).is_dir():
                return folder
        return self.data_dir / FOLDER

    def location(self) -> str:
        return str(self.root().resolve())

    def identity(self) -> str:
        """Which data this is, for caches derived from it: kind, folder and image size."""
        return f"{type(self).__name__}|{self.location()}|{self.image_size}"

    def _not_found(self, missing: Path) -> GenlabError:
        root = self.root()
        return GenlabError(
            f'{self.title} not found: {missing} does not exist. Download "Align&Cropped Images" '
            f'(img_align_celeba.zip) and "Eval/list_eval_partition.txt" from {SITE} and put '
            f"them at {root / IMAGES}/*.jpg (unzip img_align_celeba.zip in {root}) and "
            f"{root / PARTITION}, or point data.data_dir at the folder that holds {FOLDER}/"
        )

    def partition(self) -> dict[str, list[str]]:
        """{"train", "val", "test"} -> file names, in the order of the partition file."""
        path = self.root() / PARTITION
        if not path.is_file():
            raise self._not_found(path)
        splits: dict[str, list[str]] = {name: [] for name in SPLITS.values()}
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2 or fields[1] not in SPLITS or "/" in fields[0]:
                    raise GenlabError(
                        f"{path}, line {number}: expected '<image>.jpg <0, 1 or 2>', found "
                        f"{line.strip()[:80]!r}; get the file again from {SITE}"
                    )
                splits[SPLITS[fields[1]]].append(fields[0])
        for name, files in splits.items():
            if not files:
                raise GenlabError(f"{path} lists no {name} images: get the file again from {SITE}")
        return splits

    def _cache_path(self, split: str, partition: dict[str, list[str]]) -> Path:
        listing = "\n".join(f"{name}\t{' '.join(files)}" for name, files in partition.items())
        key = hashlib.sha256(
            f"{self.location()}\n{self.image_size}\n{DECODING}\n{listing}".encode()
        ).hexdigest()[:16]
        return self.cache_dir / "celeba" / f"{split}_{self.image_size}px_{key}.pt"

    # Decoding and caching.

    def prepare_data(self) -> None:
        """Decode and cache what is not cached yet (under DDP: once per node, before `setup`)."""
        if not self.cache:
            return
        partition = self.partition()
        for split in partition:
            if self._cached(split, partition) is None:
                self._decoded[split] = self._decode_and_cache(split, partition)

    def _cached(self, split: str, partition: dict[str, list[str]]) -> torch.Tensor | None:
        path = self._cache_path(split, partition)
        saved = load_cached(path)
        if saved is None:
            return None
        images, skipped = saved.get("images"), saved.get("skipped") or []
        expected = (len(partition[split]) - len(skipped), *self.dims)
        if not isinstance(images, torch.Tensor) or tuple(images.shape) != expected:
            log.warning("ignoring the cache file %s, which does not fit the data: rebuilding", path)
            return None
        if skipped and self.on_bad_image == "fail":
            return None  # decoded again, to fail naming the file (or to take a replaced one)
        log.info("%s %s images: decoded before, loaded from %s", self.title, split, path)
        return images

    def _decode_and_cache(self, split: str, partition: dict[str, list[str]]) -> torch.Tensor:
        images, skipped = self._decode(split, partition[split])
        if self.cache:
            path = self._cache_path(split, partition)
            save_cached({"images": images, "skipped": skipped}, path)
            log.info("cached the decoded %s %s images in %s", self.title, split, path)
        return images

    def _decode(self, split: str, names: list[str]) -> tuple[torch.Tensor, list[str]]:
        """uint8 (N, 3, S, S) of the files that decode, and the names of those skipped."""
        folder = self.root() / IMAGES
        if not folder.is_dir():
            raise self._not_found(folder)
        if self.on_bad_image == "fail":
            present = set(os.listdir(folder))
            absent = [name for name in names if name not in present]
            if absent:
                raise GenlabError(
                    f"{len(absent)} {split} images listed in {self.root() / PARTITION} are "
                    f"missing from {folder} (first: {absent[0]}): unzip img_align_celeba.zip "
                    f"there again (from {SITE}), or skip them with data.on_bad_image=skip"
                )
        size = self.image_size
        log.info(
            "decoding %d %s %s images at %dx%d with %d workers%s",
            len(names),
            self.title,
            split,
            size,
            size,
            self.num_workers,
            f" (once: cached in {self.cache_dir / 'celeba'})" if self.cache else "",
        )
        images = torch.empty((len(names), 3, size, size), dtype=torch.uint8)
        loader = DataLoader(
            FaceFiles([folder / name for name in names], size),
            batch_size=256,
            num_workers=self.num_workers,
        )
        bad: list[tuple[str, str]] = []
        start = 0
        for pixels, reasons in progress(loader, len(loader), f"decoding {self.title} {split}"):
            images[start : start + len(pixels)] = pixels
            bad += [(names[start + i], r) for i, r in enumerate(reasons) if r]
            if bad and self.on_bad_image == "fail":
                name, reason = bad[0]
                raise GenlabError(
                    f"cannot decode image {folder / name}: {reason}; replace it (unzip "
                    f"img_align_celeba.zip from {SITE} again), or skip such files with "
                    f"data.on_bad_image=skip"
                )
            start += len(pixels)
        if not bad:
            return images, []
        first, reason = bad[0]
        log.warning(
            "skipped %d of %d %s images in %s that do not decode (first: %s: %s)",
            len(bad),
            len(names),
            split,
            folder,
            first,
            reason,
        )
        skipped = {name for name, _ in bad}
        keep = torch.tensor([name not in skipped for name in names])
        if not keep.any():
            raise GenlabError(
                f"no {split} image in {folder} decodes: get {IMAGES} again from {SITE}"
            )
        return images[keep], sorted(skipped)

    def load_splits(self) -> dict[str, Split]:
        partition = self.partition()
        splits = {}
        for split in partition:
            images = self._decoded.pop(split, None)
            if images is None and self.cache:
                images = self._cached(split, partition)
            if images is None:
                images = self._decode_and_cache(split, partition)
            splits[split] = images, torch.zeros(len(images), dtype=torch.long)
        return splits
