#!/usr/bin/env python
"""Where a GPU is at hand: train each model for a while at each precision, print a table.

    python scripts/gpu_check.py [--fashion-dir DIR] [--models vae,dcgan] [--epochs 1]

Every row is one `genlab.train` job (the CLI's code path) on Fashion-MNIST with
`accelerator=gpu`; the numbers come from the EpochTimer scalars in its TensorBoard logs:
seconds per epoch (train + validation), training images per second, peak GPU memory.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

import genlab

PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")
MODELS = {
    "vae": ["experiment=vae_fashion_mnist"],
    "dcgan": ["experiment=dcgan_fashion_mnist"],
}


def scalars(run_dir: Path) -> dict[str, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    return {tag: statistics.mean(e.value for e in events.Scalars(tag)) for tag in tags}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--models", default="vae,dcgan")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--accelerator", default="gpu", help="cpu for a smoke test of the script")
    parser.add_argument("--limit-batches", type=int, default=None, help="batches per epoch")
    args = parser.parse_args()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    limit = [f"+trainer.limit_train_batches={args.limit_batches}"] if args.limit_batches else []
    rows = []
    for model in args.models.split(","):
        for precision in PRECISIONS:
            run_dir = Path(tempfile.mkdtemp(prefix=f"gpu_{model}_{precision}_"))
            genlab.train(
                [
                    *MODELS[model],
                    f"accelerator={args.accelerator}",
                    f"trainer.precision={precision}",
                    f"trainer.max_epochs={args.epochs}",
                    "test=false",
                    f"data.data_dir={args.fashion_dir}",
                    f"hydra.run.dir={run_dir}",
                    *limit,
                ]
            )
            values = scalars(run_dir)
            rows.append(
                (
                    model,
                    precision,
                    values["time/epoch_s"],
                    values["time/samples_per_s"],
                    values.get("memory/peak_gb", float("nan")),
                    values.get("train/loss_g", values.get("train/loss", float("nan"))),
                )
            )
    print(f"\n{device}, torch {torch.__version__}, {args.epochs} epoch(s) of Fashion-MNIST each")
    print("| model | precision | s/epoch | train images/s | peak GPU memory GB | train loss |")
    print("|---|---|---|---|---|---|")
    for model, precision, seconds, rate, memory, loss in rows:
        print(
            f"| {model} | {precision} | {seconds:.2f} | {rate:,.0f} | {memory:.3f} | {loss:.4g} |"
        )


if __name__ == "__main__":
    main()
