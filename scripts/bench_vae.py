#!/usr/bin/env python
"""genlab-train vs a plain PyTorch loop: the VAE of the PyTorch example on Fashion-MNIST.

Both run as whole processes, one after the other, on the same machine: 784-400-20, Adam lr 1e-3,
batch 128, 10 epochs on 55k images with a validation pass on 5k each epoch, then the 10k test set.
The plain loop slices in-memory tensors, as fast as PyTorch gets without a framework.

    python scripts/bench_vae.py [--epochs 10] [--repeats 1] [--lightning]
    python scripts/bench_vae.py --loggers [--epochs 10] [--repeats 3]

Prints each one's wall time, seconds per epoch and test loss, and the genlab/plain ratios.
With --lightning, a third side: the plain loop's model, loss and batches in a bare Lightning
Trainer (automatic optimization; no callbacks, logger or checkpoints), to tell Lightning's own
cost per step from genlab's.
With --loggers: genlab-train with logger=tensorboard against logger=mlflow (a local SQLite
store, shared by the MLflow runs as it would be by a user's), alternated, and their ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def plain_main(epochs: int, data_dir: Path, lightning: bool = False) -> None:
    """The baseline: the PyTorch VAE example's model and loss, on tensors already in memory,
    trained by a plain loop or (`lightning`) by a bare Lightning Trainer."""
    import gzip

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(42)

    def read(name: str) -> torch.Tensor:
        with gzip.open(data_dir / f"{name}.gz", "rb") as f:
            raw = f.read()
        ndim = raw[3]
        shape = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
        return torch.from_numpy(data.copy())

    fit = read("train-images-idx3-ubyte").view(-1, 784).float() / 255
    test = read("t10k-images-idx3-ubyte").view(-1, 784).float() / 255
    order = torch.randperm(len(fit), generator=torch.Generator().manual_seed(42))
    train, val = fit[order[:55000]], fit[order[55000:]]

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = (
                nn.Linear(784, 400),
                nn.Linear(400, 20),
                nn.Linear(400, 20),
            )
            self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

        def forward(self, x):
            h = F.relu(self.fc1(x))
            mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    def loss_fn(recon, x, mu, logvar):
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    def batch_loss(x):
        recon, mu, logvar = model(x)
        return loss_fn(recon, x, mu, logvar)

    def evaluate(data):
        model.eval()
        with torch.no_grad():
            return sum(batch_loss(x).item() for x in data.split(128)) / len(data)

    model = VAE()
    if lightning:
        epoch_times = _lightning_fit(model, batch_loss, train, val, epochs)
        val_loss = evaluate(val)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        epoch_times = []
        for _ in range(epochs):
            start = time.perf_counter()
            model.train()
            for index in torch.randperm(len(train)).split(128):
                x = train[index]
                loss = batch_loss(x) / len(x)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            val_loss = evaluate(val)
            epoch_times.append(time.perf_counter() - start)
    print(json.dumps({"epoch_s": epoch_times, "val_loss": val_loss, "test_loss": evaluate(test)}))


def _lightning_fit(model, batch_loss, train, val, epochs: int) -> list[float]:
    """The plain loop's epochs in a Lightning Trainer with nothing switched on: its seconds per
    epoch (training and validation)."""
    import logging
    import math

    import lightning as L
    import torch

    logging.getLogger("lightning").setLevel(logging.ERROR)

    class Batches:
        """The plain loop's batches: slices of the tensor, shuffled or in order."""

        def __init__(self, data, shuffle: bool):
            self.data, self.shuffle = data, shuffle

        def __len__(self) -> int:
            return math.ceil(len(self.data) / 128)

        def __iter__(self):
            n = len(self.data)
            order = torch.randperm(n) if self.shuffle else torch.arange(n)
            return (self.data[index] for index in order.split(128))

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.vae = model

        def training_step(self, x, batch_idx):
            return batch_loss(x) / len(x)

        def validation_step(self, x, batch_idx):
            batch_loss(x).item()  # as the plain loop's evaluation reads each batch's loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    class EpochSeconds(L.Callback):
        def __init__(self):
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochSeconds()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        callbacks=[timer],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(Module(), Batches(train, shuffle=True), Batches(val, shuffle=False))
    return timer.seconds


def run_plain(epochs: int, lightning: bool = False) -> dict:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--plain", "--epochs", str(epochs)]
        + (["--lightning"] if lightning else []),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wall = time.perf_counter() - start
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "epoch_s": statistics.mean(result["epoch_s"]),
        "test_loss": result["test_loss"],
    }


def run_genlab(epochs: int, logger: str = "tensorboard", log_dir: Path | None = None) -> dict:
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="bench_vae_"))
    run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=log_dir))
    command = [
        str(Path(sys.executable).with_name("genlab-train")),
        "experiment=vae_fashion_mnist",
        f"trainer.max_epochs={epochs}",
        f"logger={logger}",
        f"paths.log_dir={log_dir}",
        f"hydra.run.dir={run_dir}",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    epoch_s = _mean_epoch_time_mlflow(run_dir) if logger == "mlflow" else _mean_epoch_time(run_dir)
    return {"wall_s": wall, "epoch_s": epoch_s, "test_loss": metrics["test/loss"]}


def _mean_epoch_time(run_dir: Path) -> float:
    """Mean of the `time/epoch_s` scalars that genlab's EpochTimer logs to TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return statistics.mean(e.value for e in events.Scalars("time/epoch_s"))


def _mean_epoch_time_mlflow(run_dir: Path) -> float:
    """The same timings, read back from the run's MLflow store."""
    from mlflow.tracking import MlflowClient

    tracker = json.loads((run_dir / "run.json").read_text())["trackers"]["mlflow"]
    client = MlflowClient(tracker["tracking_uri"])
    history = client.get_metric_history(tracker["run_id"], "time/epoch_s")
    return statistics.mean(m.value for m in history)


def _print_medians(runs: dict[str, list[dict]], title: str) -> dict[str, dict[str, float]]:
    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()
    }
    print(title)
    print(f"{'':24}{'wall s':>10}{'s/epoch':>10}{'test loss':>12}")
    for name, m in med.items():
        print(f"{name:24}{m['wall_s']:10.1f}{m['epoch_s']:10.2f}{m['test_loss']:12.2f}")
    for name, rs in runs.items():
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in rs)
        print(f"  {name} wall s per run: {walls}")
    return med


def compare_loggers(epochs: int, repeats: int) -> None:
    """genlab-train with TensorBoard against MLflow, alternated."""
    store = Path(tempfile.mkdtemp(prefix="bench_vae_mlflow_"))
    runs: dict[str, list[dict]] = {"logger=tensorboard": [], "logger=mlflow": []}
    for _ in range(repeats):
        runs["logger=tensorboard"].append(run_genlab(epochs, "tensorboard"))
        runs["logger=mlflow"].append(run_genlab(epochs, "mlflow", store))
    title = f"genlab-train VAE on Fashion-MNIST, {epochs} epochs, medians of {repeats} run(s)"
    med = _print_medians(runs, title)
    tensorboard, mlflow = med["logger=tensorboard"], med["logger=mlflow"]
    print(
        f"ratio mlflow/tensorboard: wall {mlflow['wall_s'] / tensorboard['wall_s']:.3f}, "
        f"s/epoch {mlflow['epoch_s'] / tensorboard['epoch_s']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1, help="alternate runs; report medians")
    parser.add_argument("--loggers", action="store_true", help="TensorBoard against MLflow")
    parser.add_argument("--lightning", action="store_true", help="add a bare Lightning side")
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_main(args.epochs, FASHION_DIR, args.lightning)
        return
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        sys.exit(
            f"bench_vae: no Fashion-MNIST in {FASHION_DIR}: apt-get install dataset-fashion-mnist"
        )

    if args.loggers:
        compare_loggers(args.epochs, args.repeats)
        return

    runs: dict[str, list[dict]] = {"plain PyTorch": [], "genlab-train": []}
    if args.lightning:
        runs["bare Lightning"] = []
    for _ in range(args.repeats):
        runs["plain PyTorch"].append(run_plain(args.epochs))
        if args.lightning:
            runs["bare Lightning"].append(run_plain(args.epochs, lightning=True))
        runs["genlab-train"].append(run_genlab(args.epochs))
    title = (
        f"VAE 784-400-20 on Fashion-MNIST, {args.epochs} epochs, batch 128, "
        f"medians of {args.repeats} run(s) each"
    )
    med = _print_medians(runs, title)
    plain, genlab = med["plain PyTorch"], med["genlab-train"]
    print(
        f"ratio genlab/plain: wall {genlab['wall_s'] / plain['wall_s']:.3f}, "
        f"s/epoch {genlab['epoch_s'] / plain['epoch_s']:.3f}"
    )
    if args.lightning:
        bare = med["bare Lightning"]
        print(
            f"ratio bare Lightning/plain: wall {bare['wall_s'] / plain['wall_s']:.3f}, "
            f"s/epoch {bare['epoch_s'] / plain['epoch_s']:.3f}; genlab/bare Lightning: "
            f"s/epoch {genlab['epoch_s'] / bare['epoch_s']:.3f}"
        )


if __name__ == "__main__":
    main()
