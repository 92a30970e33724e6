#!/usr/bin/env python
"""threads=auto on a shared machine: a small autoencoder, idle vs one core kept busy.

    python scripts/bench_threads.py [--rounds 3] [--dry-run]

Each round runs, one after another: the job on an idle machine with `threads=auto`; then, while
another process keeps one core busy, with `threads=auto` and with `threads=<all cores>` (torch's
default). Prints each run's time inside the run (`run.json`'s `wall_time_s`, start-up left out),
the threads it used, and the medians with their ratio to the idle case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB = [
    "model=ae",
    "model.hidden_dims=[512,256]",
    "model.loss=mse",
    "trainer.max_epochs=5",
    "logger=none",
]
TRAIN = Path(sys.executable).parent / "genlab-train"


def run(folder: Path, threads: str) -> tuple[float, int]:
    subprocess.run(
        [str(TRAIN), *JOB, f"threads={threads}", f"hydra.run.dir={folder}"],
        check=True,
        capture_output=True,
    )
    record = json.loads((folder / "run.json").read_text())
    return record["wall_time_s"], record["threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    cores = str(os.cpu_count() or 1)
    cases = [("idle, threads=auto", "auto", False), ("busy, threads=auto", "auto", True)]
    cases.append((f"busy, threads={cores} (torch's default)", cores, True))
    if args.dry_run:
        for name, threads, _ in cases:
            print(f"{name}: genlab-train {' '.join(JOB)} threads={threads}")
        return
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    root = Path(tempfile.mkdtemp(prefix="bench_threads_"))
    try:
        for round_ in range(args.rounds):
            busy = None
            try:
                for case, (name, threads, needs_busy) in enumerate(cases):
                    if needs_busy and busy is None:
                        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                        time.sleep(2)  # let the scheduler see it
                    seconds, used = run(root / f"round{round_}-case{case}", threads)
                    times[name].append(seconds)
                    print(f"round {round_ + 1}: {name}: {seconds:.2f} s on {used} thread(s)")
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    idle = statistics.median(times[cases[0][0]])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name}: median {median:.2f} s ({median / idle:.2f}x idle)")


if __name__ == "__main__":
    main()
