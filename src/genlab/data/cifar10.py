"""CIFAR-10 from torchvision's folder of pickled batches, held in memory as uint8 pixels."""

from __future__ import annotations

import _codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.data.in_memory import OfficialSplitDataModule, Split
from genlab.errors import GenlabError

FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
SIDE = 32

# What a batch file may build while it is unpickled: numpy arrays, bytes, and nothing else (a
# pickle can call any function it names: a file from elsewhere could run code). The builders are
# taken from numpy itself and allowed under numpy 1's names (numpy.core, what the official files
# name) and numpy 2's (numpy._core), for pickles of protocol 2 (the official files) to 5.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_SAFE: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _codecs.encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _RECONSTRUCT for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _FROMBUFFER for core in ("core", "_core")},
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _SAFE.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which no CIFAR batch does")
        return found


def how_to_get(data_dir: Path) -> str:
    return (
        f"get it with data.download=true (needs internet), or download {URL} and unpack it into "
        f"{data_dir} (that makes {data_dir / FOLDER}/), or point data.data_dir at the folder "
        f"that holds {FOLDER}/"
    )


def read_batch(path: Path, data_dir: Path) -> Split:
    """One pickled batch: (uint8 images (N, 3, 32, 32), labels (N,)); a damaged file is one
    GenlabError naming it."""

    def damaged(reason: str) -> GenlabError:
        return GenlabError(
            f"{path} is not a readable CIFAR-10 batch ({reason}): the download is damaged; "
            f"delete it and {how_to_get(data_dir)}"
        )

    try:
        with path.open("rb") as file:
            batch = _ArraysOnly(file, encoding="bytes").load()
    except Exception as err:  # a damaged pickle raises any of many types
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise damaged(reason) from None
    if not isinstance(batch, dict):
        raise damaged(f"it holds a {type(batch).__name__}, not a dict")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise damaged(f"no data or labels in it, only {', '.join(map(str, batch)) or 'nothing'}")
    data, labels = batch["data"], np.asarray(batch["labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise damaged(f"its data is not a 2-d uint8 array: {type(data).__name__}")
    if data.shape[1] != 3 * SIDE * SIDE or labels.shape != (len(data),):
        raise damaged(f"{list(data.shape)} pixels and {list(labels.shape)} labels")
    if labels.dtype.kind not in "iu" or len(labels) and not 0 <= labels.min() <= labels.max() < 10:
        raise damaged("labels outside 0..9")
    # Rows are the red, green and blue planes of 32 x 32, one after the other.
    images = torch.from_numpy(data.reshape(-1, 3, SIDE, SIDE).copy())
    return images, torch.from_numpy(labels.astype(np.int64))


class CIFAR10DataModule(OfficialSplitDataModule):
    """The 50,000 training images minus a seeded validation split of `val_size`, and the official
    10,000 test images; 3 x 32 x 32, 10 classes, held as uint8 (180 MB).

    Found in `data_dir/cifar-10-batches-py/` (torchvision's layout, what the official archive
    unpacks to), or in `data_dir` itself; `download` fetches it there through torchvision.
    """

    title = "CIFAR-10"
    default_dims = (3, SIDE, SIDE)

    def search_dirs(self) -> list[Path]:
        return [self.data_dir / FOLDER, self.data_dir]

    def folder(self) -> Path | None:
        """The first folder that holds all six batch files."""
        for folder in self.search_dirs():
            if all((folder / name).is_file() for name in (*TRAIN_FILES, TEST_FILE)):
                return folder
        return None

    def prepare_data(self) -> None:
        if self.download and self.folder() is None:
            self._download()

    def _download(self) -> None:
        from torchvision import datasets

        try:  # one archive holds the train and test batches
            datasets.CIFAR10(root=str(self.data_dir), train=True, download=True)
        except Exception as err:  # network errors come in many types; all mean the same here
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise GenlabError(
                f"downloading {self.title} into {self.data_dir} failed ({reason}); download "
                f"{URL} and unpack it into {self.data_dir} by hand"
            ) from None

    def _not_found(self) -> GenlabError:
        """One line: which file is missing where, and how to get the data."""
        files = (*TRAIN_FILES, TEST_FILE)
        started = [d for d in self.search_dirs() if any((d / name).is_file() for name in files)]
        if started:  # a folder with some of the files: name the first one missing
            missing = next(name for name in files if not (started[0] / name).is_file())
            what = f"{missing} is missing in {started[0]}"
        else:
            what = (
                f"no data_batch_1..5 and test_batch in {self.data_dir / FOLDER} "
                f"(nor in {self.data_dir})"
            )
        return GenlabError(f"{self.title} not found: {what}; {how_to_get(self.data_dir)}")

    def load_splits(self) -> dict[str, Split]:
        folder = self.folder()
        if folder is None:
            raise self._not_found()
        parts = [read_batch(folder / name, self.data_dir) for name in TRAIN_FILES]
        fit = torch.cat([images for images, _ in parts]), torch.cat([labels for _, labels in parts])
        train, val = self.split_off_validation(fit)
        return {"train": train, "val": val, "test": read_batch(folder / TEST_FILE, self.data_dir)}
