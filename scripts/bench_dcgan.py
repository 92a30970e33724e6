#!/usr/bin/env python
"""genlab-train vs the PyTorch DCGAN tutorial's loop, side by side, on Fashion-MNIST.

Both sides train the same networks (genlab.nn.dcgan: the tutorial's design sized for 28x28,
widths 64, latent 100) with the same optimizers (Adam 2e-4, betas 0.5/0.999), batch size (128),
data (Fashion-MNIST's 55,000 training images in [-1, 1]) and epochs as
`experiment=dcgan_fashion_mnist`. The plain side is the tutorial's loop written out in PyTorch
(one fake batch per step, the discriminator on real then fake, the generator on the same fake),
on tensors in memory. Both are scored at the end in genlab's feature space, the same way:
FID/KID of generated images against the 10,000 test images, with the cached feature classifier
(trained once before either side is timed).

    python scripts/bench_dcgan.py [--epochs 5] [--repeats 1]

Prints each side's wall time, seconds per epoch, FID and KID, and the genlab/plain ratios.
genlab-train also scores val/fid every epoch (the experiment keeps the best generator by it):
that cost is in its wall time, as a user of the experiment pays it.
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
SHAPE = (1, 28, 28)
RANGE = (-1.0, 1.0)


def datamodule(data_dir: Path):
    """genlab's Fashion-MNIST data, as the experiment loads it (the split and the identity that
    names the cached feature classifier)."""
    from genlab.data.fashion_mnist import FashionMNISTDataModule

    data = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=128, value_range=RANGE)
    data.setup()
    return data


def feature_network(data, cache_dir: Path):
    from genlab.evaluation.features import feature_network as build

    network, _ = build("classifier", data, RANGE, SHAPE, cache_dir, classifier_epochs=3)
    return network


def plain_main(epochs: int, data_dir: Path, cache_dir: Path) -> None:
    """The tutorial's training loop, then FID/KID in genlab's feature space."""
    import torch
    import torch.nn.functional as F

    from genlab.evaluation.sample_quality import SampleQuality
    from genlab.nn.dcgan import DCGANDiscriminator, DCGANGenerator

    torch.manual_seed(42)
    data = datamodule(data_dir)
    train = data.splits["train"].images
    generator = DCGANGenerator(100, SHAPE, 64)
    discriminator = DCGANDiscriminator(SHAPE, 64)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    epoch_times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for index in torch.randperm(len(train)).split(128):
            real = train[index]
            fake = generator(torch.randn(len(real), 100))
            # Discriminator: real as real, fake as fake.
            opt_d.zero_grad()
            d_real, d_fake = discriminator(real), discriminator(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            loss_d.backward()
            opt_d.step()
            # Generator: the same fake, labelled real.
            opt_g.zero_grad()
            d_fake = discriminator(fake)
            loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            loss_g.backward()
            opt_g.step()
        epoch_times.append(time.perf_counter() - start)

    generator.eval()  # as genlab tests: BatchNorm's running statistics
    quality = SampleQuality(feature_network(data, cache_dir), torch.device("cpu"))
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for real, _ in data.test_dataloader():
            n = SampleQuality.fakes_needed(len(real))
            quality.update(real, generator(torch.randn(n, 100, generator=noise)))
    scores = quality.compute()
    print(json.dumps({"epoch_s": epoch_times, "fid": scores["fid"], "kid": scores["kid"]}))


def run_plain(epochs: int, data_dir: Path, cache_dir: Path) -> dict:
    command = [sys.executable, __file__, "--plain", "--epochs", str(epochs)]
    command += ["--data-dir", str(data_dir), "--cache-dir", str(cache_dir)]
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "epoch_s": statistics.mean(result["epoch_s"]),
        "fid": result["fid"],
        "kid": result["kid"],
    }


def run_genlab(epochs: int, data_dir: Path, cache_dir: Path) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="bench_dcgan_"))
    command = [
        str(Path(sys.executable).with_name("genlab-train")),
        "experiment=dcgan_fashion_mnist",
        f"trainer.max_epochs={epochs}",
        f"data.data_dir={data_dir}",
        f"paths.cache_dir={cache_dir}",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    print(f"genlab-train run: {run_dir}", flush=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "wall_s": wall,
        "epoch_s": _mean_epoch_time(run_dir),
        "fid": metrics["test/fid"],
        "kid": metrics["test/kid"],
    }


def _mean_epoch_time(run_dir: Path) -> float:
    """Mean of the `time/epoch_s` values genlab's EpochTimer logs (here to CSV)."""
    import csv

    with (run_dir / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    return statistics.mean(float(r["time/epoch_s"]) for r in rows if r.get("time/epoch_s"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="alternate runs; report medians")
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, default=FASHION_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_main(args.epochs, args.data_dir, args.cache_dir)
        return
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        sys.exit(
            f"bench_dcgan: no Fashion-MNIST in {FASHION_DIR}: apt-get install dataset-fashion-mnist"
        )
    cache_dir = Path(tempfile.mkdtemp(prefix="bench_dcgan_cache_"))
    print("training the feature classifier once, before timing (about 2 minutes on 2 cores)")
    feature_network(datamodule(FASHION_DIR), cache_dir)

    runs: dict[str, list[dict]] = {"plain PyTorch": [], "genlab-train": []}
    for _ in range(args.repeats):
        runs["plain PyTorch"].append(run_plain(args.epochs, FASHION_DIR, cache_dir))
        runs["genlab-train"].append(run_genlab(args.epochs, FASHION_DIR, cache_dir))
    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()
    }
    print(
        f"DCGAN on Fashion-MNIST, {args.epochs} epochs, batch 128, medians of "
        f"{args.repeats} run(s) each; FID/KID on the test set in genlab's feature space"
    )
    print(f"{'':16}{'wall s':>10}{'s/epoch':>10}{'FID':>10}{'KID':>10}")
    for name, m in med.items():
        print(f"{name:16}{m['wall_s']:10.1f}{m['epoch_s']:10.2f}{m['fid']:10.3f}{m['kid']:10.4f}")
    plain, genlab = med["plain PyTorch"], med["genlab-train"]
    print(
        f"ratio genlab/plain: wall {genlab['wall_s'] / plain['wall_s']:.3f}, "
        f"s/epoch {genlab['epoch_s'] / plain['epoch_s']:.3f}, "
        f"FID {genlab['fid'] / plain['fid']:.3f}"
    )


if __name__ == "__main__":
    main()
