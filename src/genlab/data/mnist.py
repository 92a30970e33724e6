"""MNIST from its IDX files, held in memory; torchvision fetches them when `download=true`."""

from __future__ import annotations

from pathlib import Path

from genlab.data.idx import find_idx, read_idx
from genlab.data.in_memory import OfficialSplitDataModule, Split
from genlab.errors import GenlabError


class MNISTDataModule(OfficialSplitDataModule):
    """The official train set minus a seeded validation split of `val_size`; the official test set.

    Files are looked for in `data_dir`, then in torchvision's layout `data_dir/<name>/raw`, then in
    `system_dirs`, raw or gzipped.
    """

    title = "MNIST"
    default_dims = (1, 28, 28)
    torchvision_name = "MNIST"
    system_dirs: tuple[str, ...] = ()
    how_to_get = ""

    def search_dirs(self) -> list[Path]:
        return [
            self.data_dir,
            self.data_dir / self.torchvision_name / "raw",
            *map(Path, self.system_dirs),
        ]

    def prepare_data(self) -> None:
        folders = self.search_dirs()
        missing = [
            name
            for prefix in ("train", "t10k")
            for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
            if find_idx(name, folders) is None
        ]
        if missing and self.download:
            self._download()

    def _download(self) -> None:
        from torchvision import datasets

        dataset_class = getattr(datasets, self.torchvision_name)
        try:
            for train in (True, False):
                dataset_class(root=str(self.data_dir), train=train, download=True)
        except Exception as err:  # network errors come in many types; all mean the same here
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise GenlabError(
                f"downloading {self.title} into {self.data_dir} failed ({reason}); put the IDX "
                f"files there by hand, or use data=digits, which runs offline"
            ) from None

    def load_splits(self) -> dict[str, Split]:
        fit = self._read("train")
        train, val = self.split_off_validation(fit)
        return {"train": train, "val": val, "test": self._read("t10k")}

    def _read(self, prefix: str) -> Split:
        folders = self.search_dirs()
        paths = [
            find_idx(f"{prefix}-{kind}", folders)
            for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
        ]
        if None in paths:
            name = f"{prefix}-{'images-idx3' if paths[0] is None else 'labels-idx1'}-ubyte"
            raise GenlabError(
                f"{self.title} file {name}[.gz] not found in {', '.join(map(str, folders))}. "
                f"Get it with data.download=true (needs internet){self.how_to_get}, or point "
                f"data.data_dir at a folder holding the IDX files; data=digits runs offline"
            )
        images, labels = (read_idx(p) for p in paths)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise GenlabError(
                f"{paths[0]} and {paths[1]} do not match: {list(images.shape)} images, "
                f"{list(labels.shape)} labels; fetch them again"
            )
        return images.unsqueeze(1).float().div_(255.0), labels.long()
