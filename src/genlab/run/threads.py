"""How many threads torch uses on the CPU: the cores this process may use and that are free now.

torch's default is every core of the machine. On cores shared with other work (a laptop with a
browser open, a cluster node with --cpus-per-task, the other ranks of a DDP run on the CPU), its
threads wait for each other at every operation and a small model runs several times slower than
on one thread. `threads=auto` takes the cores of this process's affinity mask (and no more than
SLURM_CPUS_PER_TASK), leaves out those that are busy when the run starts, and shares the rest
among the processes of the run; `threads=N` sets N.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

# A core counts as busy when other work used more than this share of it while it was sampled.
BUSY_SHARE = 0.5
SAMPLE_SECONDS = 0.1


def usable_cores() -> list[int]:
    """The cores this process may run on (its affinity mask), at most SLURM_CPUS_PER_TASK."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores = cores or list(range(os.cpu_count() or 1))
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return cores[: int(slurm)] if slurm.isdigit() and int(slurm) > 0 else cores


def _cpu_times() -> dict[int, tuple[int, int]]:
    """core -> (busy, total) jiffies so far, from /proc/stat (empty where there is none)."""
    times = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return times
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            values = [int(v) for v in fields]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            times[int(name[3:])] = (sum(values) - idle, sum(values))
    return times


def busy_cores(cores: list[int], seconds: float = SAMPLE_SECONDS) -> set[int]:
    """Which of `cores` other work keeps busy: sampled over `seconds` (this process sleeps)."""
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    busy = set()
    for core in cores:
        if core in before and core in after:
            used = after[core][0] - before[core][0]
            total = after[core][1] - before[core][1]
            if total > 0 and used / total > BUSY_SHARE:
                busy.add(core)
    return busy


def choose_threads(setting: int | str, processes: int = 1) -> int:
    """The intra-op thread count of one process of the run: `setting` if a number; for "auto",
    the free usable cores shared among `processes` (at least one thread)."""
    if setting != "auto":
        return int(setting)
    cores = usable_cores()
    free = len(cores) - len(busy_cores(cores)) if len(cores) > 1 else 1
    return max(1, free // max(1, processes))
