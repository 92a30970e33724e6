"""tune=lr_find and tune=batch_size: Lightning's Tuner on a throwaway model before fit.

What the tuner finds goes into the config (model.optimizer.lr, data.batch_size), and the run then
builds and seeds its model and data from that config as if it had never been tuned: its
config.yaml holds the value it trained with, and that config alone repeats the run. Nothing
passes from the tuner's trainer or model into the run's.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig, OmegaConf

from genlab.config.checks import TUNED_KEYS
from genlab.errors import GenlabError, TrainingDiverged
from genlab.run.run_dir import RunDir

log = logging.getLogger(__name__)

Build = Callable[[DictConfig], tuple[L.LightningDataModule, L.LightningModule]]


def tune(cfg: DictConfig, run_dir: RunDir, build: Build) -> tuple[dict[str, Any], Path | None]:
    """Run the finder `cfg.tune` names on the model and data `build(cfg)` makes, and set what
    it finds in `cfg` (unless tune.apply=false). Returns what run.json keeps of it ("tuned") and
    the LR finder's plot, saved in the run directory."""
    settings, key = cfg.tune, TUNED_KEYS[cfg.tune.finder]
    configured = OmegaConf.select(cfg, key)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, model = build(cfg)
    plot, tried = None, 0
    with tempfile.TemporaryDirectory(prefix="genlab-tune-") as scratch:
        if settings.finder == "lr_find":
            trainer = _trainer(cfg, scratch, settings.num_training)
            finder = _find_lr(settings, trainer, model, datamodule)
            found, tried = finder.suggestion(), len(finder.results["lr"])
            plot = run_dir.write_figure(RunDir.LR_FIND, _figure(finder, found))
        else:
            trainer = _trainer(cfg, scratch, settings.steps_per_trial)
            found = _find_batch_size(settings, trainer, model, datamodule)
    applied = bool(settings.apply) and found is not None
    if applied:
        OmegaConf.update(cfg, key, found)
    log.info(_summary(settings.finder, key, found, configured, applied, plot, tried))
    tuned = {"finder": settings.finder, "key": key, "found": found, "configured": configured}
    return {**tuned, "applied": applied}, plot


def _find_lr(settings: DictConfig, trainer: L.Trainer, model: Any, datamodule: Any) -> Any:
    """Lightning's learning-rate search (its `_LRFinder`: the rates, the losses, the suggestion).
    A loss that becomes NaN or infinite stops it in one line that says what to change."""
    try:
        finder = Tuner(trainer).lr_find(
            model,
            datamodule=datamodule,
            min_lr=settings.min_lr,
            max_lr=settings.max_lr,
            num_training=settings.num_training,
            mode=settings.mode,
            early_stop_threshold=settings.early_stop_threshold,
            update_attr=False,
        )
    except TrainingDiverged as err:
        raise GenlabError(
            f"tune=lr_find: {err.what} became {err.value} at step {err.step}, before the finder "
            f"stopped; lower tune.max_lr={settings.max_lr} or "
            f"tune.early_stop_threshold={settings.early_stop_threshold}"
        ) from None
    # Lightning logs an error of its own when it has no suggestion: the run's line says so.
    logging.getLogger("lightning.pytorch.tuner.lr_finder").setLevel(logging.CRITICAL)
    return finder


def _find_batch_size(settings: DictConfig, trainer: L.Trainer, model: Any, datamodule: Any) -> int:
    """Lightning's batch-size search: the largest size that ran (set on the datamodule, which
    is thrown away)."""
    return Tuner(trainer).scale_batch_size(
        model,
        datamodule=datamodule,
        mode=settings.mode,
        init_val=settings.init_val,
        max_trials=settings.max_trials,
        steps_per_trial=settings.steps_per_trial,
    )


def keep_tuned_value(cfg: DictConfig, run_dir: RunDir) -> None:
    """A tuned run continued in its directory is not tuned again: it trains on with the value
    its config.yaml holds (what the first segment found and applied, or the configured one)."""
    key = TUNED_KEYS.get(cfg.tune.get("finder"))
    saved = OmegaConf.select(run_dir.read_config(), key) if key else None
    if saved is not None:
        OmegaConf.update(cfg, key, saved)


def _trainer(cfg: DictConfig, scratch: str, steps: int) -> L.Trainer:
    """A trainer like the run's for the tuner's throwaway steps: no loggers, callbacks,
    checkpoints, profiler or progress bar, and nothing written into the run directory (the
    tuner's copy of the starting weights goes to `scratch`). At most `steps` optimizer steps
    whatever the run's epochs, time or debug settings say: each finder sets its own."""
    return hydra.utils.instantiate(
        cfg.trainer,
        default_root_dir=scratch,
        logger=False,
        callbacks=[],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        profiler=None,
        strategy="auto",  # one process (genlab.config.checks.tune_errors)
        fast_dev_run=False,
        min_epochs=None,  # else the finder's early stop would wait for the epoch's end
        max_epochs=-1,
        max_steps=steps,
        max_time=None,
    )


def _figure(finder: Any, suggestion: float | None) -> Any:
    """Lightning's plot of the loss against the learning rate, the suggestion marked, on a
    figure of its own (no pyplot state, no display needed)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100, layout="tight")
    axes = figure.subplots()
    finder.plot(suggest=suggestion is not None, ax=axes)
    axes.set_title(f"suggested lr {suggestion:.3g}" if suggestion else "no suggestion")
    return figure


def _summary(
    finder: str,
    key: str,
    found: float | int | None,
    configured: Any,
    applied: bool,
    plot: Path | None,
    tried: int,
) -> str:
    """The console line: what the finder found and what the run trains with."""
    where = f" (plot: {plot})" if plot else ""
    if found is None:  # the LR finder's suggestion skips the first 10 rates and the last
        return (
            f"tune={finder}: no suggestion from the {tried} learning rates tried (too few with "
            "a finite loss; raise tune.num_training or tune.early_stop_threshold)"
            f"{where}; training with the configured {key}={configured}"
        )
    kept = "training with it" if applied else f"keeping {configured} (tune.apply=false)"
    return f"tune={finder}: {key}={found:.4g} (configured {configured}), {kept}{where}"
