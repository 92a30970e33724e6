#!/usr/bin/env python
"""The fixed cost of a training step: a model of one weight, so that the arithmetic is next to
nothing and what is timed is the loop around it.

    python scripts/bench_step_overhead.py [--steps 2000] [--repeats 3]

Sides, alternated in one process, each over the same CPU batches of 128:
- a raw PyTorch loop (forward, backward, Adam step);
- a bare Lightning Trainer (no callbacks, logger, checkpoints or progress bar) over a plain
  LightningModule: what Lightning's automatic optimization adds;
- the same Trainer over a `GenlabModule` (genlab's per-step NaN check and epoch sums);
- that, with the callbacks every genlab run has that need no logger (progress bar, epoch timer,
  the stop handler, the checkpoint callback).
Prints milliseconds per step (medians) and what each side adds to the one before.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from functools import partial

import lightning as L
import torch
from torch import nn

from genlab.callbacks.checkpoint import BestCheckpoint
from genlab.callbacks.console import ProgressBar
from genlab.callbacks.epoch_timer import EpochTimer
from genlab.callbacks.safe_stop import SafeStop
from genlab.models.base import GenlabModule


class Batches:
    """The same tensors every epoch, in order."""

    def __init__(self, batches: list[torch.Tensor]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return ((x,) for x in self.batches)


class Plain(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.weight = nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        return self.weight(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class Genlab(GenlabModule):
    def __init__(self):
        super().__init__(partial(torch.optim.Adam, lr=1e-3))
        self.weight = nn.Linear(1, 1)

    def compute_losses(self, batch, stage: str) -> dict[str, torch.Tensor]:
        return {"loss": self.weight(batch[0]).pow(2).mean()}


class StepTimer(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.seconds = time.perf_counter() - self.start


def raw_loop(batches: list[torch.Tensor]) -> float:
    weight = nn.Linear(1, 1)
    optimizer = torch.optim.Adam(weight.parameters(), lr=1e-3)
    start = time.perf_counter()
    for x in batches:
        loss = weight(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def lightning_fit(module: L.LightningModule, batches: list[torch.Tensor], callbacks) -> float:
    timer = StepTimer()
    with_callbacks = bool(callbacks)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        callbacks=[timer, *callbacks],
        enable_checkpointing=with_callbacks,
        enable_progress_bar=with_callbacks,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, Batches(batches))
    return timer.seconds


def genlab_callbacks() -> list[L.Callback]:
    folder = tempfile.mkdtemp(prefix="bench_step_")
    return [ProgressBar(), EpochTimer(), SafeStop(folder), BestCheckpoint(dirpath=folder)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    torch.manual_seed(0)
    batches = [torch.randn(128, 1) for _ in range(args.steps)]
    sides = {
        "raw PyTorch loop": lambda: raw_loop(batches),
        "bare Lightning": lambda: lightning_fit(Plain(), batches, []),
        "GenlabModule, bare Lightning": lambda: lightning_fit(Genlab(), batches, []),
        "GenlabModule, genlab callbacks": lambda: lightning_fit(
            Genlab(), batches, genlab_callbacks()
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, side in sides.items():
            times[name].append(side() / args.steps * 1e3)
    print(f"fixed cost per training step, {args.steps} steps, medians of {args.repeats}")
    previous = None
    for name, values in times.items():
        median = statistics.median(values)
        added = "" if previous is None else f"   +{median - previous:.3f} ms"
        runs = ", ".join(f"{v:.3f}" for v in values)
        print(f"{name:32}{median:8.3f} ms{added}   (runs: {runs})")
        previous = median


if __name__ == "__main__":
    main()
