"""Shared fixtures: tiny IDX datasets written on the spot, and running the CLI as a user would."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra

# Imported here, at collection: Lightning's loggers bind their handlers to the stderr of the
# moment they are imported, which inside a test is a capture stream closed after it.
from genlab.cli.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
# A quick AE on digits that prints and draws nothing: with batch_size 16, 79 training batches per
# epoch.
QUIET_AE = [
    "model=ae",
    "logger=none",
    "data.batch_size=16",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.image_grids=null",
]
BATCHES_PER_EPOCH = 79
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write a uint8 array as an IDX file (gzipped when `compress`), the MNIST format."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def make_mnist_dir(
    folder: Path, n_train: int = 300, n_test: int = 100, compress: bool = True
) -> Path:
    """MNIST-named IDX files with blob images (a bright square whose place depends on the label)."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n)
        images = rng.integers(0, 40, size=(n, 28, 28))
        for i, label in enumerate(labels):
            r, c = 4 + 2 * (label // 5) * 5, 4 + (label % 5) * 4
            images[i, r : r + 8, c : c + 6] = 230
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return folder


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    return make_mnist_dir(tmp_path / "mnist")


def run_cli(*args: str, cwd: Path, module: str = "genlab", timeout: float = 600):
    """Run `python -m genlab ARGS` in `cwd` (any directory, like a user would), in a fresh
    interpreter: for what needs a process of its own. `train_cli` is the same, ~10 s faster."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def train_cli(monkeypatch, capfd):
    """`genlab-train ARGS` run in this process through the console script's entry point
    (`genlab.cli.train.main` with `sys.argv` set) in `cwd`; returns what `subprocess.run` would."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def call(*args: str, cwd: Path) -> CliResult:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["genlab-train", *args])
        GlobalHydra.instance().clear()
        capfd.readouterr()
        try:
            train_main()
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        finally:
            GlobalHydra.instance().clear()
        out, err = capfd.readouterr()
        return CliResult(code, out, err)

    return call


def quiet_trainer(**overrides):
    """A CPU Trainer that logs, checkpoints and prints nothing unless `overrides` say so:
    one epoch of one batch, no validation."""
    import lightning as L

    options = dict(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**{**options, **overrides})
