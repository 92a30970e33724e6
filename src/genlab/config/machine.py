"""The trainer's precision, accelerator and devices against what Lightning and this machine offer,
and whether a sweep's launcher can start the processes each job needs."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from genlab.config.rules import parse_devices, show
from genlab.errors import GenlabError

# Lightning 2's precision values and accelerator names (read here without importing Lightning,
# so that a config is checked in a moment).
PRECISIONS = ("16-true", "16-mixed", "bf16-true", "bf16-mixed", "32-true", "64-true")
PRECISION_ALIASES = ("64", "32", "16", "bf16")
ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps", "tpu")


def cuda_devices() -> int:
    """The CUDA GPUs this process may use: torch's count once torch is imported; before that,
    the NVIDIA driver's list of GPUs, less those CUDA_VISIBLE_DEVICES hides."""
    if "torch" in sys.modules:
        import torch

        return torch.cuda.device_count()
    gpus = Path("/proc/driver/nvidia/gpus")
    present = len(list(gpus.iterdir())) if gpus.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return present
    ids = [v for v in visible.split(",") if v.strip()]
    if any(v.strip().startswith("-") for v in ids):
        ids = ids[: next(i for i, v in enumerate(ids) if v.strip().startswith("-"))]
    return min(present, len(ids))


def _mps_available() -> bool:
    if "torch" in sys.modules:
        import torch

        mps = getattr(torch.backends, "mps", None)
        return mps is not None and mps.is_available()
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def _device_kind(accelerator: str) -> str:
    """ "gpu", "cpu" or another accelerator's name, as `auto` would pick on this machine."""
    if accelerator == "auto":
        if cuda_devices() > 0:
            return "gpu"
        return "mps" if _mps_available() else "cpu"
    return "gpu" if accelerator == "cuda" else accelerator


def trainer_errors(trainer: dict[str, Any]) -> list[str]:
    """Precision, accelerator and devices against what Lightning and this machine offer."""
    errors = []
    precision = trainer.get("precision")
    if precision is not None and str(precision) not in (*PRECISIONS, *PRECISION_ALIASES):
        errors.append(
            f"trainer.precision={precision}: Lightning does not know it; allowed: "
            f"{', '.join(PRECISIONS)}"
        )
    accelerator = trainer.get("accelerator", "auto")
    if not isinstance(accelerator, str):
        return errors  # an accelerator object from a config: Lightning checks it
    if accelerator not in ACCELERATORS:
        return [*errors, f"trainer.accelerator={accelerator}: allowed: {', '.join(ACCELERATORS)}"]
    kind = _device_kind(accelerator)
    if kind == "cpu" and str(precision) in ("16-mixed", "16"):
        errors.append(
            f"trainer.precision={precision} needs a CUDA GPU, and trainer.accelerator="
            f"{accelerator} runs on the CPU here; on a CPU use bf16-mixed or 32-true"
        )
    devices = trainer.get("devices", "auto")
    number, ids = parse_devices(devices)  # well-formed: the rule of `devices` checked it
    if kind == "gpu":
        available = cuda_devices()
        if available == 0:
            errors.append(
                f"trainer.accelerator={accelerator}: this machine has no CUDA GPU; use "
                f"accelerator=cpu or accelerator=auto"
            )
        elif (number or 0) > available or any(i >= available for i in ids):
            errors.append(
                f"trainer.devices={show(devices)}: this machine has {available} CUDA GPU(s); "
                f"allowed: 1 to {available}, ids 0 to {available - 1}, or -1 for all"
            )
    elif kind == "cpu":
        cores = os.cpu_count() or 1
        if ids or (number is None and devices != "auto") or (number or 0) > cores:
            errors.append(
                f"trainer.devices={show(devices)}: on the CPU, devices is a number of processes "
                f"from 1 to {cores} (this machine's cores), or auto"
            )
    return errors


def processes_per_run(trainer: dict[str, Any], gpus: int) -> int:
    """How many processes a trainer config starts: devices (all: `gpus` on a GPU, else one)
    times nodes."""
    number, _ = parse_devices(trainer.get("devices", 1)) or (1, [])
    if number is None:
        number = gpus if trainer.get("accelerator") in ("gpu", "cuda", "auto") else 1
    return max(number, 1) * int(trainer.get("num_nodes", 1) or 1)


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
    from omegaconf import OmegaConf

    if trainer is None:
        return
    if OmegaConf.is_config(trainer):
        # Only the keys that count processes: others (default_root_dir) interpolate Hydra's
        # runtime, which is not set before the first job of a sweep.
        keys = [key for key in ("accelerator", "devices", "num_nodes") if key in trainer]
        trainer = OmegaConf.to_container(OmegaConf.masked_copy(trainer, keys), resolve=True)
    target = str((launcher or {}).get("_target_", ""))
    problem = multirun_problem(trainer, target, cuda_devices())
    if problem:
        raise GenlabError(problem)
