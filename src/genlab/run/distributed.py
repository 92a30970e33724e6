"""Which process is in charge of a run's files, and the run-directory stamp every rank agrees on.

Under DDP several processes run genlab-train with the same config. Lightning's own launcher
starts ranks 1..N-1 only at `trainer.fit`, re-running the command with `hydra.run.dir=<rank 0's
directory>` added; SLURM (`srun`) and torchrun start every rank at once. Before the trainer
exists, the rank is known only from the environment these launchers set, so that is what
`is_rank_zero` reads: files a run writes (config.yaml, run.json, metrics.json, summaries, Hydra's
`.hydra/`) are written by the process for which it is true, and checks of the run directory run
there only (another rank would find rank 0's fresh run.json and take it for an earlier run).
"""

from __future__ import annotations

import os
from datetime import datetime

# The object Lightning marks with the process's rank (light to import: no torch).
from lightning_utilities.core.rank_zero import rank_zero_only

# Set by Lightning's launcher (LOCAL_RANK, NODE_RANK), torchrun (RANK, GROUP_RANK) and SLURM.
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


def is_rank_zero() -> bool:
    """True in global rank 0, or in a process that is not part of a distributed job."""
    if getattr(rank_zero_only, "rank", 0) != 0:
        return False
    return all(os.environ.get(name, "0") in ("", "0") for name in _RANK_VARIABLES)


def run_stamp(pattern: str) -> str:
    """The name of a new run directory: the time now, or an id every rank of the job shares.

    Ranks started together by SLURM or torchrun compose their configs separately, a moment
    apart, so a timestamp could differ between them; the job's id does not. Lightning's own
    launcher needs neither: it hands rank 0's directory to the ranks it starts.
    """
    slurm_job = os.environ.get("SLURM_JOB_ID")
    if slurm_job and int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1:
        return f"slurm-{slurm_job}"
    torchrun_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if torchrun_id and torchrun_id != "none" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"torchrun-{torchrun_id}"
    return datetime.now().strftime(pattern)
