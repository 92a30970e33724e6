#!/usr/bin/env python
"""Where a GPU is at hand: train each model for a while at each precision, print a table.

    python scripts/gpu_check.py [--fashion-dir DIR] [--corpus FILE] [--models vae,dcgan,gpt2]
                                [--epochs 1] [--limit-batches N] [--dry-run]

(`scripts/gpu_check.sh` runs it with the settings of docs/benchmarks.md.) Every row is one
`genlab.train` job (the CLI's code path) with `accelerator=gpu`: the VAE and the DCGAN on
Fashion-MNIST, GPT-2 (`experiment=gpt2_shakespeare`, 4 layers, width 128, blocks of 128 tokens)
on `--corpus`. Without the data at hand (a machine with no internet), random images of the same
size and a text made from this repository's own files stand in: throughput and memory do not
depend on the pixels or the words. The numbers come from the EpochTimer scalars in each run's
TensorBoard logs: seconds per epoch (train + validation), training samples per second (images,
or tokens for GPT-2), peak GPU memory.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")
MODELS = {
    "vae": ["experiment=vae_fashion_mnist"],
    # Without FID, the experiment's val/fid to keep the best generator by is not there.
    "dcgan": [
        "experiment=dcgan_fashion_mnist",
        "model.eval.features=none",
        "callbacks.model_checkpoint.monitor=auto",
    ],
    "gpt2": ["experiment=gpt2_shakespeare"],
}
# Samples per training example, for the throughput column: GPT-2 counts tokens.
UNITS = {"vae": ("images", 1), "dcgan": ("images", 1), "gpt2": ("tokens", 128)}


def fashion_dir(wanted: str) -> str:
    """`wanted` if it holds Fashion-MNIST, else a folder of random images in its format."""
    if list(Path(wanted).glob("train-images-idx3-ubyte*")):
        return wanted
    folder = Path(tempfile.mkdtemp(prefix="gpu_check_fashion_"))
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60000), ("t10k", 10000)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
                d.to_bytes(4, "big") for d in array.shape
            )
            (folder / f"{prefix}-{kind}-ubyte").write_bytes(header + array.tobytes())
    return str(folder)


def corpus(wanted: str) -> str:
    """`wanted` if it exists, else about 1 MB of text from this repository's files."""
    if Path(wanted).is_file():
        return wanted
    text = "\n".join(p.read_text() for p in sorted(REPO.glob("**/*.py")) + [REPO / "README.md"])
    path = Path(tempfile.mkdtemp(prefix="gpu_check_text_")) / "corpus.txt"
    path.write_text(text * max(1, 1_000_000 // max(len(text), 1)))
    return str(path)


def scalars(run_dir: Path, per_epoch: bool = False) -> dict:
    """A run's TensorBoard scalars: each tag's mean, or (`per_epoch`) its values in order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    values = {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    return values if per_epoch else {tag: statistics.mean(v) for tag, v in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--corpus", default=str(REPO.parent / "shared/data/tinyshakespeare.txt"))
    parser.add_argument("--models", default="vae,dcgan,gpt2")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--dry-run", action="store_true", help="print each job's overrides only")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--accelerator", default="gpu", help="cpu for a smoke test of the script")
    parser.add_argument("--limit-batches", type=int, default=None, help="batches per epoch")
    args = parser.parse_args()
    limit = []
    if args.limit_batches:
        limit = [
            f"trainer.limit_train_batches={args.limit_batches}",
            f"trainer.limit_val_batches={max(1, args.limit_batches // 10)}",
        ]
    data = {
        "vae": [f"data.data_dir={fashion_dir(args.fashion_dir)}"] if not args.dry_run else [],
        "gpt2": [f"data.path={corpus(args.corpus)}"] if not args.dry_run else [],
    }
    data["dcgan"] = data["vae"]
    rows = []
    for model in args.models.split(","):
        for precision in args.precisions.split(","):
            run_dir = (
                Path("<temp dir>")
                if args.dry_run
                else Path(tempfile.mkdtemp(prefix=f"gpu_{model}_{precision}_"))
            )
            overrides = [
                *MODELS[model],
                f"accelerator={args.accelerator}",
                f"trainer.precision={precision}",
                f"trainer.max_epochs={args.epochs}",
                "test=false",
                *data[model],
                f"hydra.run.dir={run_dir}",
                *limit,
            ]
            if args.dry_run:
                print(f"{model} {precision}: genlab-train {' '.join(overrides)}")
                continue
            import genlab

            genlab.train(overrides)
            values = scalars(run_dir)
            unit, per_sample = UNITS[model]
            rows.append(
                (
                    model,
                    precision,
                    values["time/epoch_s"],
                    f"{values['time/samples_per_s'] * per_sample:,.0f} {unit}",
                    values.get("memory/peak_gb", float("nan")),
                    values.get("train/loss_g", values.get("train/loss", float("nan"))),
                )
            )
    if args.dry_run:
        return
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    batches = f"{args.limit_batches} batches" if args.limit_batches else "the whole set"
    print(f"\n{device}, torch {torch.__version__}, {args.epochs} epoch(s) of {batches} each")
    print("| model | precision | s/epoch | train samples/s | peak GPU memory GB | train loss |")
    print("|---|---|---|---|---|---|")
    for model, precision, seconds, rate, memory, loss in rows:
        print(f"| {model} | {precision} | {seconds:.2f} | {rate} | {memory:.3f} | {loss:.4g} |")


if __name__ == "__main__":
    main()
