#!/usr/bin/env python
"""A 4-job sweep on 2 CPU cores: one job after another (Hydra's basic launcher) vs two at a time
(`hydra/launcher=local_parallel hydra.launcher.n_jobs=2`), side by side in one run.

    python scripts/bench_parallel_sweep.py [--epochs 200] [--rounds 1] [--dry-run]

The jobs: the VAE on digits with model.latent_dim=2,4,8,16, each training a few seconds. All
sweeps run on the same 2 cores (this script pins itself, and so its sweeps, to the first two it
may use): one after another, each job takes both (threads=auto, when both are free); two at a
time, each job one. Each side is the whole `genlab-train -m ...` process, timed from start to
end (with --rounds N, alternated, medians). Prints the wall times, the jobs' own times and
threads from their run.json, and the ratios; each sweep's summary must list 4 completed jobs. A
third side, one at a time on one thread each, tells how much of the gain is running two jobs
rather than the thread count.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genlab.run.threads import usable_cores

TRAIN = Path(sys.executable).parent / "genlab-train"
QUIET = [
    "logger=none",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.image_grids=null",
]
SIDES = {
    "one at a time (basic launcher)": [],
    "two at a time (local_parallel, n_jobs=2)": [
        "hydra/launcher=local_parallel",
        "hydra.launcher.n_jobs=2",
    ],
    # For reference: one at a time as well, but each job on one thread, as each parallel one is.
    "one at a time, threads=1": ["threads=1"],
}


def command(launcher: list[str], epochs: int) -> list[str]:
    jobs = ["model=vae", "model.latent_dim=2,4,8,16", f"trainer.max_epochs={epochs}", *QUIET]
    return [str(TRAIN), "-m", *launcher, *jobs]


def sweep(folder: Path, launcher: list[str], epochs: int) -> tuple[float, list[dict]]:
    """Run one sweep; its wall time and its jobs' records (run.json)."""
    start = time.perf_counter()
    sweep_dir = f"hydra.sweep.dir={folder}"
    subprocess.run([*command(launcher, epochs), sweep_dir], check=True, capture_output=True)
    wall = time.perf_counter() - start
    with (folder / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [row["status"] for row in rows] == ["completed"] * 4, rows
    return wall, [json.loads((folder / str(job) / "run.json").read_text()) for job in range(4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    cores = usable_cores()[:2]
    if len(cores) < 2:
        sys.exit("bench_parallel_sweep: needs 2 CPU cores")
    os.sched_setaffinity(0, cores)  # the sweeps and their jobs inherit it
    if args.dry_run:
        for name, launcher in SIDES.items():
            print(f"{name}: {' '.join(command(launcher, args.epochs))}")
        return
    walls: dict[str, list[float]] = {name: [] for name in SIDES}
    root = Path(tempfile.mkdtemp(prefix="bench_parallel_sweep_"))
    try:
        for round_ in range(args.rounds):
            for side, (name, launcher) in enumerate(SIDES.items()):
                wall, records = sweep(root / f"round{round_}-side{side}", launcher, args.epochs)
                walls[name].append(wall)
                jobs = ", ".join(f"{r['wall_time_s']:.1f} s on {r['threads']}" for r in records)
                print(f"round {round_ + 1}: {name}: {wall:.1f} s (jobs: {jobs} thread(s))")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"cores {','.join(map(str, cores))}, {args.epochs} epochs per job")
    sequential = statistics.median(walls[next(iter(SIDES))])
    for name, values in walls.items():
        wall = statistics.median(values)
        print(f"{name}: {wall:.1f} s ({wall / sequential:.2f}x the sequential sweep's time)")


if __name__ == "__main__":
    main()
