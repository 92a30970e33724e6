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
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

# Set by Lightning's launcher (LOCAL_RANK, NODE_RANK), torchrun (RANK, GROUP_RANK) and SLURM.
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


def is_rank_zero() -> bool:
    """True in global rank 0, or in a process that is not part of a distributed job."""
    if getattr(rank_zero_only, "rank", 0) != 0:
        return False
    return all(os.environ.get(name, "0") in ("", "0") for name in _RANK_VARIABLES)


def if_rank_zero(value: Any) -> Any:
    """`value` in rank 0, None elsewhere (the resolver behind `hydra.output_subdir`)."""
    return value if is_rank_zero() else None


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


def processes_per_run(trainer: dict[str, Any], gpus: int) -> int:
    """How many processes a trainer config starts (devices x nodes), -1 devices = `gpus`."""
    devices = trainer.get("devices", 1)
    if devices in (-1, "-1", "auto"):
        count = gpus if trainer.get("accelerator") in ("gpu", "cuda", "auto") else 1
    elif isinstance(devices, (list, tuple)):
        count = len(devices)
    elif isinstance(devices, str):
        count = (
            len([d for d in devices.split(",") if d.strip()]) if "," in devices else int(devices)
        )
    else:
        count = int(devices)
    return max(count, 1) * int(trainer.get("num_nodes", 1) or 1)


def multirun_problem(trainer: dict[str, Any], launcher_target: str, gpus: int) -> str | None:
    """Why this multirun cannot run its jobs under DDP, or None.

    Hydra's basic launcher runs the jobs one after another in one process: Lightning would
    re-launch that process's command line (the whole sweep) as ranks 1..N-1, and the process
    group of the first job would outlive it. With the SLURM launcher each job is its own SLURM
    job, its ranks started by `srun` (ntasks-per-node = trainer.devices).
    """
    if processes_per_run(trainer, gpus) <= 1:
        return None
    if launcher_target.endswith("SlurmLauncher"):
        return None
    return (
        "multirun (-m) with a multi-process trainer (trainer.devices x trainer.num_nodes > 1) "
        "needs hydra/launcher=slurm, which starts each job's ranks as a SLURM job; here, run "
        "the jobs one at a time without -m, or sweep on one device per job "
        "(accelerator=gpu or accelerator=cpu)"
    )


def check_multirun(trainer: Any, launcher: Any) -> None:
    """Raise GenlabError when a multirun job would start several processes it cannot manage."""
    import torch
    from omegaconf import OmegaConf

    from genlab.errors import GenlabError

    if trainer is None:
        return
    if OmegaConf.is_config(trainer):
        # Only the keys that count processes: others (default_root_dir) interpolate Hydra's
        # runtime, which is not set before the first job of a sweep.
        keys = [key for key in ("accelerator", "devices", "num_nodes") if key in trainer]
        trainer = OmegaConf.to_container(OmegaConf.masked_copy(trainer, keys), resolve=True)
    target = str((launcher or {}).get("_target_", ""))
    problem = multirun_problem(trainer, target, torch.cuda.device_count())
    if problem:
        raise GenlabError(problem)


def strategy_for(strategy: Any, model: Any) -> Any:
    """`ddp` as `ddp_find_unused_parameters_true` for a model whose steps leave parameters unused.

    A GAN's discriminator update computes no gradient for the generator (and the other way
    round): plain DDP then waits for those gradients and fails on the next step.
    """
    if strategy == "ddp" and getattr(model, "ddp_find_unused_parameters", False):
        return "ddp_find_unused_parameters_true"
    return strategy
