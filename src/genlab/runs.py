"""Finding and loading what a finished run left behind: its config, checkpoints and model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from genlab.errors import GenlabError


def resolve_checkpoint(ckpt_path: str, run_dir: Path) -> Path:
    """`last` / `best`: that checkpoint of `run_dir`; anything else: a path that must exist."""
    if ckpt_path in ("last", "best"):
        path = Path(run_dir) / "checkpoints" / f"{ckpt_path}.ckpt"
    else:
        path = Path(ckpt_path)
    if not path.is_file():
        raise GenlabError(
            f"ckpt_path={ckpt_path}: no checkpoint at {path}; give an existing .ckpt file, or "
            f"'last' / 'best' together with run_dir=<a run directory that has checkpoints/>"
        )
    return path


# What a training run writes into its directory (Hydra's own .hydra/ and train.log aside).
RUN_OUTPUTS = (
    "checkpoints",
    "tensorboard",
    "csv",
    "config.yaml",
    "run.json",
    "metrics.json",
    "eval_metrics.json",
    "samples.png",  # genlab-generate's default output
)


def clear_run_outputs(run_dir: Path) -> None:
    """Delete what an earlier run left in `run_dir` (overwrite=true), so nothing of it mixes in."""
    for name in RUN_OUTPUTS:
        path = Path(run_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    log_file = Path(run_dir) / "train.log"
    if log_file.is_file():  # open (appending) for this run already: emptied, not deleted
        log_file.write_text("")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents, memory-mapped (the optimizer state of `last.ckpt` is not read
    unless used) and without running code from the file (weights_only)."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def run_dir_of(checkpoint: Path) -> Path:
    """A checkpoint's run directory: the parent of its `checkpoints/` folder."""
    return Path(checkpoint).resolve().parent.parent


def load_config(run_dir: Path) -> DictConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise GenlabError(f"{path} not found: run_dir must be a genlab run directory")
    return OmegaConf.load(path)


def load_run(
    run_dir: str | Path, checkpoint: str = "best"
) -> tuple[L.LightningModule, L.LightningDataModule, DictConfig]:
    """Rebuild a finished run's model (weights from `checkpoint`) and datamodule from its config.

    `checkpoint` is "best", "last" or a path. The config is the run's saved `config.yaml`, not
    today's defaults, so the model and data are the ones that were trained.
    """
    # genlab-train's checks of ckpt_path (imported here: genlab.validation imports this module).
    from genlab.validation import check_checkpoint_fits, checked_checkpoint

    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    # Loaded once: checked, then used.
    state, problems = checked_checkpoint(checkpoint, run_dir, cfg.model.get("_target_"))
    if problems:  # missing, corrupt, or written by another model class
        raise GenlabError("\n".join(problems))
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    # As Lightning does: the hook first (a seq2seq model builds its network from the
    # vocabularies stored there), then the weights, checked to fit before they are loaded.
    model.on_load_checkpoint(state)
    check_checkpoint_fits(model, checkpoint, state)
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model, datamodule, cfg
