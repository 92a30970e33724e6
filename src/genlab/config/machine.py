"""The trainer's precision, accelerator and devices against what Lightning and this machine offer,
and whether a sweep's launcher can start the processes each job needs."""

from __future__ import annotations

import os
from typing import Any, get_args

import torch

from genlab.config.rules import parse_devices, show
from genlab.errors import GenlabError


def known_precisions() -> list[str]:
    """Every `precision` value Lightning takes ("32-true", "bf16-mixed", 16, "16", ...)."""
    try:
        from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT

        return [str(v) for literal in get_args(_PRECISION_INPUT) for v in get_args(literal)]
    except ImportError:  # moved in another Lightning version: the values of 2.6
        return ["16-true", "16-mixed", "bf16-true", "bf16-mixed", "32-true", "64-true"] + [
            "64",
            "32",
            "16",
            "bf16",
        ]


def _known_accelerators() -> list[str]:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    return sorted({"auto", "gpu", "tpu", *AcceleratorRegistry.available_accelerators()})


def _device_kind(accelerator: str) -> str:
    """ "gpu", "cpu" or another accelerator's name, as `auto` would pick on this machine."""
    if accelerator == "auto":
        if torch.cuda.is_available():
            return "gpu"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    return "gpu" if accelerator == "cuda" else accelerator


def trainer_errors(trainer: dict[str, Any]) -> list[str]:
    """Precision, accelerator and devices against what Lightning and this machine offer."""
    errors = []
    precision = trainer.get("precision")
    if precision is not None and str(precision) not in known_precisions():
        errors.append(
            f"trainer.precision={precision}: Lightning does not know it; allowed: "
            f"{', '.join(p for p in known_precisions() if '-' in p)}"
        )
    accelerator = trainer.get("accelerator", "auto")
    if not isinstance(accelerator, str):
        return errors  # an accelerator object from a config: Lightning checks it
    if accelerator not in _known_accelerators():
        return [
            *errors,
            f"trainer.accelerator={accelerator}: allowed: {', '.join(_known_accelerators())}",
        ]
    kind = _device_kind(accelerator)
    if kind == "cpu" and str(precision) in ("16-mixed", "16"):
        errors.append(
            f"trainer.precision={precision} needs a CUDA GPU, and trainer.accelerator="
            f"{accelerator} runs on the CPU here; on a CPU use bf16-mixed or 32-true"
        )
    devices = trainer.get("devices", "auto")
    number, ids = parse_devices(devices)  # well-formed: the rule of `devices` checked it
    if kind == "gpu":
        available = torch.cuda.device_count()
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
    problem = multirun_problem(trainer, target, torch.cuda.device_count())
    if problem:
        raise GenlabError(problem)
