"""Final metrics of a run: collected from the trainer, written to metrics.json, shown in hparams."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from genlab.atomic import replace_atomically


def collect_metrics(trainer: L.Trainer) -> dict[str, float]:
    """Epoch-level metrics the trainer holds now (train/val after fit, test after test) as floats.

    Only `train/`, `val/` and `test/` metrics: timings (`time/`) and learning rates stay in
    TensorBoard, so that two identical runs write identical files.
    """
    metrics = {}
    for name, value in trainer.callback_metrics.items():
        if name.startswith(("train/", "val/", "test/")) and not name.endswith("_step"):
            metrics[name] = float(value)
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.monitor and checkpoint.best_model_score is not None:
        metrics[f"{checkpoint.monitor}_best"] = float(checkpoint.best_model_score)
    return metrics


def read_metrics(run_dir: Path) -> dict[str, float]:
    """The metrics.json an earlier segment of this run wrote (empty if none), as floats."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    return {k: math.nan if v is None else float(v) for k, v in saved.items() if k != "status"}


def merge_metrics(earlier: dict[str, float], new: dict[str, float]) -> dict[str, float]:
    """`earlier` updated by `new` stage by stage: a stage (train, val, test) that `new` logged
    replaces the earlier one whole, so no stale value sits beside fresh ones, and more training
    makes earlier test results stale too; a stage it did not log is kept (a resumed run with
    no epochs left, a test-only run). `*_best` values alone do not count as logging a stage."""
    logged = {_stage(name) for name in new if not name.endswith("_best")}
    if "train" in logged:
        logged.add("test")
    kept = {name: value for name, value in earlier.items() if _stage(name) not in logged}
    return {**kept, **new}


def _stage(name: str) -> str:
    return name.split("/", 1)[0]


def write_metrics(
    trainer: L.Trainer, run_dir: Path, metrics: dict[str, float], status: str | None = None
) -> None:
    """Write metrics.json (rank 0): one flat object, keys sorted, NaN/inf as null.

    A run that stopped early (`status` "interrupted" or "diverged") says so in a `status` key,
    next to the metrics it reached; a finished run's file holds metrics only.
    """
    if not trainer.is_global_zero:
        return
    clean: dict[str, float | str | None] = {
        k: (v if math.isfinite(v) else None) for k, v in sorted(metrics.items())
    }
    if status is not None:
        clean["status"] = status
    text = json.dumps(clean, indent=2) + "\n"
    replace_atomically(Path(run_dir) / "metrics.json", lambda tmp: tmp.write_text(text))


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}/"))
        return flat
    value = tree if isinstance(tree, (int, float, str, bool)) else str(tree)
    return {prefix.rstrip("/"): value}


def log_hparams(trainer: L.Trainer, cfg: DictConfig, metrics: dict[str, float]) -> None:
    """Fill TensorBoard's hparams tab: the whole config against the final val/test metrics.

    The summary is written directly (not via `log_hyperparams`) so the metric curves do not get
    a duplicate point at step 0; the tab reads each metric's last logged scalar.
    """
    if not trainer.is_global_zero:
        return
    from torch.utils.tensorboard.summary import hparams

    shown = {k: v for k, v in metrics.items() if k.startswith(("train/", "val/", "test/"))}
    shown = {k: v for k, v in shown.items() if math.isfinite(v) and not k.endswith("_best")}
    params = _flatten(OmegaConf.to_container(cfg, resolve=True))
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = logger.experiment._get_file_writer()
            for summary in hparams(params, shown):
                writer.add_summary(summary)
            writer.flush()
