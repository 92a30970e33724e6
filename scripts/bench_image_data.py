"""One epoch of `experiment=dcgan_cifar10` and of `experiment=vae_celeba64` on full-size stand-ins
for their datasets (which cannot be downloaded here), in the datasets' own formats:

    python scripts/bench_image_data.py [--dir DIR] [--only cifar10|celeba]

- CIFAR-10: 50,000 training and 10,000 test images of random pixels in torchvision's pickled
  batches (`cifar-10-batches-py/`), random labels. The run is the experiment as it stands,
  cut to one epoch: its FID feature classifier trains on the random labels (its scores mean
  nothing here; what it costs is real).
- CelebA: 20,000 smooth random 178 x 218 JPEGs in the aligned-and-cropped layout, partitioned
  16,000 / 2,000 / 2,000. Decoding every JPEG (DataLoader workers) is timed against loading the
  cache that decoding writes, then one epoch of the experiment runs on the cached pixels.

Prints wall times, the epoch's time and training images per second (genlab's `time/epoch_s` and
`time/samples_per_s`, read back from TensorBoard).
"""

from __future__ import annotations

import argparse
import pickle
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CIFAR_BATCH = 10_000
CELEBA_PARTS = (16_000, 2_000, 2_000)
THREADS = 2  # the cores of this machine; DataLoader workers for decoding


def write_cifar(root: Path, seed: int = 0) -> Path:
    """`root/cifar-10-batches-py/`: five training batches and a test batch of 10,000 images."""
    folder = root / "cifar-10-batches-py"
    if (folder / "test_batch").is_file():  # written by an earlier run with this --dir
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.integers(0, 256, (CIFAR_BATCH, 3072), dtype=np.uint8),
            "labels": [int(x) for x in rng.integers(0, 10, CIFAR_BATCH)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    return folder


def write_celeba(root: Path, seed: int = 0) -> Path:
    """`root/celeba/`: img_align_celeba/000001.jpg ... and list_eval_partition.txt. Smooth images
    (random colours bilinearly enlarged, plus grain), so that a JPEG is about the size of a real
    face's rather than of incompressible noise."""
    from PIL import Image

    folder = root / "celeba"
    images = folder / "img_align_celeba"
    if (folder / "list_eval_partition.txt").is_file():  # written by an earlier run with this --dir
        return folder
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines, number = [], 1
    total = sum(CELEBA_PARTS)
    for split, count in enumerate(CELEBA_PARTS):
        for _ in range(count):
            coarse = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
            smooth = np.asarray(
                Image.fromarray(coarse).resize((178, 218), Image.Resampling.BILINEAR)
            )
            grain = rng.integers(-6, 7, smooth.shape)
            pixels = np.clip(smooth.astype(np.int16) + grain, 0, 255).astype(np.uint8)
            name = f"{number:06d}.jpg"
            Image.fromarray(pixels).save(images / name, quality=90)
            lines.append(f"{name} {split}")
            if number % 2000 == 0:
                print(f"  wrote {number:,} of {total:,} JPEGs", flush=True)
            number += 1
    (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return folder


def train_one_epoch(experiment: str, data_dir: Path, work: Path, *overrides: str) -> dict:
    """genlab-train `experiment` for one epoch; its wall time, epoch time, images/s and the
    printed cost of each FID evaluation."""
    run_dir = work / f"run_{experiment}"
    command = [
        str(Path(sys.executable).with_name("genlab-train")),
        f"experiment={experiment}",
        "trainer.max_epochs=1",
        f"data.data_dir={data_dir}",
        f"paths.cache_dir={work / 'cache'}",
        f"paths.log_dir={work / 'logs'}",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    print("  $", " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{experiment} failed:\n{done.stderr[-3000:]}")
    scalars = _scalars(run_dir / "tensorboard")
    fid_costs = [
        float(s) for s in re.findall(r"validation images, ([\d.]+) s\)", done.stdout + done.stderr)
    ]
    return {
        "wall_s": wall,
        "epoch_s": scalars["time/epoch_s"],
        "images_per_s": scalars["time/samples_per_s"],
        "fid_eval_s": fid_costs,
    }


def _scalars(log_dir: Path) -> dict[str, float]:
    """The last value of each scalar in a TensorBoard log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}


def bench_cifar10(work: Path) -> None:
    print("CIFAR-10 stand-in: 50,000 + 10,000 random 32x32 RGB images", flush=True)
    start = time.perf_counter()
    write_cifar(work / "data")
    print(f"  written in {time.perf_counter() - start:.1f} s", flush=True)
    result = train_one_epoch("dcgan_cifar10", work / "data", work)
    fid = ", ".join(f"{s:.1f}" for s in result["fid_eval_s"])
    print(
        f"experiment=dcgan_cifar10, 1 epoch on 45,000 images: wall {result['wall_s']:.1f} s, "
        f"epoch {result['epoch_s']:.1f} s (validation and val/fid included), "
        f"{result['images_per_s']:.0f} training images/s; val/fid evaluation: {fid} s "
        f"(the first trains the feature classifier)",
        flush=True,
    )


def bench_celeba(work: Path) -> None:
    import torch

    from genlab.data.celeba import CelebADataModule

    print("CelebA stand-in: 20,000 random 178x218 JPEGs", flush=True)
    start = time.perf_counter()
    folder = write_celeba(work / "data")
    size = sum(f.stat().st_size for f in (folder / "img_align_celeba").iterdir())
    print(f"  written in {time.perf_counter() - start:.1f} s, {size / 2**20:.0f} MiB", flush=True)
    torch.set_num_threads(THREADS)
    timings = {}
    for attempt in ("decode", "cached"):
        dm = CelebADataModule(
            data_dir=str(work / "data"),
            cache_dir=str(work / "cache"),
            image_size=64,
            num_workers=THREADS,
        )
        start = time.perf_counter()
        dm.prepare_data()
        dm.setup()
        timings[attempt] = time.perf_counter() - start
    total = sum(CELEBA_PARTS)
    print(
        f"data=celeba, all {total:,} images to 64x64 uint8: decoding the JPEGs with {THREADS} "
        f"workers (and writing the cache) {timings['decode']:.1f} s "
        f"({total / timings['decode']:.0f} images/s); from the cache {timings['cached']:.2f} s",
        flush=True,
    )
    result = train_one_epoch("vae_celeba64", work / "data", work, f"data.num_workers={THREADS}")
    print(
        f"experiment=vae_celeba64, 1 epoch on {CELEBA_PARTS[0]:,} cached images: wall "
        f"{result['wall_s']:.1f} s, epoch {result['epoch_s']:.1f} s (validation included), "
        f"{result['images_per_s']:.0f} training images/s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dir", type=Path, help="where to write the data, or find it from an earlier run"
    )
    parser.add_argument("--only", choices=["cifar10", "celeba"])
    parser.add_argument("--write-only", action="store_true", help="write the stand-ins, no runs")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench_image_data_"))
    print(f"data and runs in {work}", flush=True)
    if args.write_only:
        write_cifar(work / "data")
        write_celeba(work / "data")
        return
    if args.only in (None, "cifar10"):
        bench_cifar10(work)
    if args.only in (None, "celeba"):
        bench_celeba(work)


if __name__ == "__main__":
    main()
