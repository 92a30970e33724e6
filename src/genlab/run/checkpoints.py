"""Checkpoints of a run: finding one (`last`, `best` or a path), loading it safely, and checking
that it was written by, and fits, the configured model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import OmegaConf

from genlab.config.rules import show
from genlab.errors import GenlabError
from genlab.run.run_dir import RunDir


def resolve_checkpoint(ckpt_path: str, run_dir: RunDir) -> Path:
    """`last` / `best`: that checkpoint of `run_dir`; anything else: a path that must exist."""
    path = run_dir.checkpoint(ckpt_path) if ckpt_path in ("last", "best") else Path(ckpt_path)
    if not path.is_file():
        raise GenlabError(
            f"ckpt_path={ckpt_path}: no checkpoint at {path}; give an existing .ckpt file, or "
            f"'last' / 'best' together with run_dir=<a run directory that has checkpoints/>"
        )
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents, memory-mapped (the optimizer state of `last.ckpt` is not read
    unless used) and without running code from the file (weights_only)."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def checked_checkpoint(
    ckpt_path: str, run_dir: RunDir, model_target: str | None
) -> tuple[dict[str, Any] | None, list[str]]:
    """(the loaded checkpoint, []) or (None, what is wrong with it): it must exist, load safely,
    and have been written by the configured model class (`model_target`, if given)."""
    try:
        path = resolve_checkpoint(ckpt_path, run_dir)
    except GenlabError as err:
        return None, [str(err)]
    try:
        checkpoint = load_checkpoint(path)
    except Exception as err:  # truncated, not a torch file, or objects that need code to load
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return None, [
            f"ckpt_path={ckpt_path}: {path} does not load as a checkpoint with "
            f"torch.load(weights_only=True) ({reason}); give a checkpoint that genlab wrote"
        ]
    weights = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        return None, [
            f"ckpt_path={ckpt_path}: {path} is not a Lightning checkpoint (no state_dict of "
            f"tensors)"
        ]
    written_by = checkpoint.get("genlab_model") or _model_of_run(RunDir.of_checkpoint(path))
    if written_by and model_target and written_by != model_target:
        return None, [
            f"ckpt_path={ckpt_path} was written by {written_by}, but the configured model is "
            f"{model_target} (model._target_): choose the model it was trained with (its run's "
            f"run.json has the overrides), or another checkpoint"
        ]
    return checkpoint, []


def _model_of_run(run_dir: RunDir) -> str | None:
    if not run_dir.has_config():
        return None
    return OmegaConf.select(run_dir.read_config(), "model._target_")


def check_checkpoint_fits(
    model: L.LightningModule, ckpt_path: str, checkpoint: dict[str, Any] | str | Path
) -> None:
    """Refuse, with the differing hyperparameters, a checkpoint (loaded, or its path) whose
    weights do not fit `model` (Lightning would fail later with a traceback of every mismatched
    tensor)."""
    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(Path(checkpoint))
    theirs, ours = checkpoint["state_dict"], model.state_dict()
    problem = next(
        (
            f"{name} is {list(theirs[name].shape)} there and {list(tensor.shape)} here"
            for name, tensor in ours.items()
            if name in theirs and tuple(theirs[name].shape) != tuple(tensor.shape)
        ),
        None,
    )
    missing = [name for name in ours if name not in theirs]
    if problem is None and missing:
        problem = f"it has no {missing[0]}"
    if problem is None:
        return
    saved = checkpoint.get("hyper_parameters") or {}
    current = dict(model.hparams)
    differing = [
        f"model.{key}={show(saved[key])}"
        for key in saved
        if key in current and saved[key] != current[key]
    ]
    trained = f"; it was trained with {' '.join(differing)}" if differing else ""
    raise GenlabError(
        f"ckpt_path={ckpt_path} does not fit the configured model: {problem}{trained}"
    )
