"""Datamodules: seeded splits, in-memory batches, IDX files found, read and refused clearly."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch
from conftest import FASHION_DIR, make_mnist_dir, run_cli, write_idx

from genlab.data.digits import DigitsDataModule
from genlab.data.fashion_mnist import FashionMNISTDataModule
from genlab.data.idx import read_idx
from genlab.data.mnist import MNISTDataModule
from genlab.errors import GenlabError


def test_digits_split_is_seeded_disjoint_and_complete():
    dm = DigitsDataModule(batch_size=32)
    dm.setup()
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["val"] == sizes["test"] == 270
    images = dm.splits["train"].images
    assert images.shape[1:] == (1, 8, 8) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() == 1.0

    other = DigitsDataModule(batch_size=32)
    other.setup()
    assert torch.equal(other.splits["val"].images, dm.splits["val"].images)
    shifted = DigitsDataModule(split_seed=7)
    shifted.setup()
    assert not torch.equal(shifted.splits["val"].images, dm.splits["val"].images)


def test_loaders_yield_whole_batches_without_per_sample_collation():
    dm = DigitsDataModule(batch_size=50)
    dm.setup()
    batches = list(dm.train_dataloader())
    assert [len(b[0]) for b in batches[:-1]] == [50] * (len(batches) - 1)
    assert sum(len(b[0]) for b in batches) == len(dm.splits["train"])
    x, y = batches[0]
    assert x.shape == (50, 1, 8, 8) and y.shape == (50,)
    first_val = next(iter(dm.val_dataloader()))[0]
    assert torch.equal(first_val, dm.splits["val"].images[:50])


def test_mnist_reads_raw_and_gzipped_idx_and_carves_validation(tmp_path):
    for compress in (True, False):
        folder = make_mnist_dir(
            tmp_path / f"gz{compress}", n_train=120, n_test=40, compress=compress
        )
        dm = MNISTDataModule(data_dir=str(folder), val_size=20, batch_size=16)
        dm.setup()
        assert {k: len(v) for k, v in dm.splits.items()} == {"train": 100, "val": 20, "test": 40}
        assert dm.splits["test"].images.shape[1:] == (1, 28, 28)
        assert dm.splits["test"].images.max() == pytest.approx(230 / 255)


def test_torchvision_layout_is_found(tmp_path):
    make_mnist_dir(tmp_path / "FashionMNIST" / "raw", n_train=30, n_test=10, compress=False)
    dm = FashionMNISTDataModule(data_dir=str(tmp_path), val_size=5)
    dm.setup()
    assert len(dm.splits["test"]) == 10


@pytest.mark.skipif(
    not FASHION_DIR.is_dir(), reason="needs Debian's dataset-fashion-mnist (.ci/run installs it)"
)
def test_fashion_mnist_from_debian_package(tmp_path):
    dm = FashionMNISTDataModule(data_dir=str(tmp_path / "empty"))
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 55000, "val": 5000, "test": 10000}


@pytest.fixture
def local_mirror(tmp_path):
    """An HTTP server on loopback serving tiny MNIST files, standing in for the public mirror."""
    source = make_mnist_dir(tmp_path / "mirror", n_train=30, n_test=10)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(source))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield source, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_download_uses_torchvision_and_lands_where_it_is_read(tmp_path, monkeypatch, local_mirror):
    """The real download code path, over HTTP from loopback instead of the internet."""
    from torchvision.datasets import MNIST

    source, url = local_mirror
    resources = [
        (p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted(source.iterdir())
    ]
    monkeypatch.setattr(MNIST, "mirrors", [url])
    monkeypatch.setattr(MNIST, "resources", resources)
    dm = MNISTDataModule(data_dir=str(tmp_path / "data"), download=True, val_size=5)
    dm.prepare_data()
    assert (tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    dm.setup()
    assert len(dm.splits["train"]) == 25


def test_missing_files_name_the_paths_and_the_fix(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(GenlabError) as err:
        dm.setup()
    message = str(err.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "nowhere") in message
    assert "data.download=true" in message and "data=digits" in message


@pytest.mark.parametrize("damage", ["truncated_gz", "truncated_raw", "bad_magic", "not_gzip"])
def test_corrupt_idx_files_are_refused_with_the_path(tmp_path, damage):
    images = np.zeros((10, 28, 28), dtype=np.uint8)
    if damage == "truncated_gz":
        path = write_idx(tmp_path / "x-idx3-ubyte", images)
        path.write_bytes(path.read_bytes()[:-30])
    elif damage == "truncated_raw":
        path = write_idx(tmp_path / "x-idx3-ubyte", images, compress=False)
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "bad_magic":
        path = tmp_path / "x-idx3-ubyte"
        path.write_bytes(b"\x01\x02\x03\x04" + bytes(100))
    else:
        path = tmp_path / "x-idx3-ubyte.gz"
        path.write_bytes(b"this is not gzip data at all")
    with pytest.raises(GenlabError, match="fetch it again") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_cli_reports_corrupt_data_in_one_line(tmp_path):
    """In a fresh process, as a user runs it (test_bad_input.py has more cases, in process)."""
    folder = make_mnist_dir(tmp_path / "mnist", n_train=30, n_test=10)
    damaged = folder / "train-images-idx3-ubyte.gz"
    damaged.write_bytes(gzip.compress(gzip.decompress(damaged.read_bytes())[:-500]))
    result = run_cli(
        "data=mnist", f"data.data_dir={folder}", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("genlab: error:")]
    assert len(error_lines) == 1 and str(damaged) in error_lines[0]


def test_dims_in_config_must_match_the_data():
    dm = DigitsDataModule(dims=(1, 28, 28))
    with pytest.raises(GenlabError, match="data.dims"):
        dm.setup()
