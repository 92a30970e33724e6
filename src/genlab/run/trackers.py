"""The run's experiment loggers (TensorBoard, CSV, MLflow, W&B, ...): built with this run's name,
group, tags and, for a continued run, its earlier ids; given the resolved config when the run
starts and its final metrics and files when it ends. What each logger does with them is its
adapter's (genlab.loggers)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from genlab.loggers.base import LoggerAdapter, TrackedRun
from genlab.loggers.registry import adapter, adapter_class
from genlab.run.distributed import is_rank_zero
from genlab.run.metrics import hparams_of
from genlab.run.run_dir import RunDir

log = logging.getLogger(__name__)


def tracked_run(
    cfg: DictConfig, run_dir: RunDir, hydra_cfg: Any, in_sweep: bool, earlier: dict | None
) -> TrackedRun:
    """A single run is named by its directory in the group of its kind (`name`: model_data); a
    sweep's jobs by their number and overrides, in one group named after the sweep's folder."""
    if in_sweep:
        name = f"{hydra_cfg.job.num}_{hydra_cfg.job.override_dirname}".replace("/", "_")
        sweep_dir = Path(hydra_cfg.sweep.dir).resolve()
        log_dir = Path(cfg.paths.log_dir).resolve()
        inside = sweep_dir.is_relative_to(log_dir)
        group = str(sweep_dir.relative_to(log_dir)) if inside else sweep_dir.name
    else:
        name, group = run_dir.path.resolve().name, str(cfg.name)
    trackers = dict((earlier or {}).get("trackers") or {})
    if earlier and earlier.get("tensorboard_version"):  # run.json of genlab before trackers
        trackers.setdefault("tensorboard", {"version": earlier["tensorboard_version"]})
    return TrackedRun(
        name=name,
        group=group,
        output_dir=run_dir.path.resolve(),
        in_sweep=in_sweep,
        tags=tuple(cfg.get("tags") or ()),
        earlier=trackers,
    )


def _nodes(cfg: DictConfig) -> list[DictConfig]:
    return [node for node in (cfg.get("logger") or {}).values() if node is not None]


def tracker_problems(cfg: DictConfig) -> list[str]:
    """What would stop a configured logger from working (a tracking server that does not
    answer), before the run starts."""
    problems = []
    for node in _nodes(cfg):
        cls = adapter_class(hydra.utils.get_class(node._target_))
        problem = cls.problem(OmegaConf.to_container(node, resolve=True))
        problems += [problem] if problem else []
    return problems


def build_loggers(cfg: DictConfig, run: TrackedRun) -> list[Logger]:
    loggers = []
    for node in _nodes(cfg):
        cls = adapter_class(hydra.utils.get_class(node._target_))
        settings = cls.settings(OmegaConf.to_container(node, resolve=True), run)
        loggers.append(hydra.utils.instantiate(node, **settings))
    return loggers


def start_tracking(loggers: list[Logger], cfg: DictConfig, run: TrackedRun) -> dict[str, Any]:
    """Hand each logger the resolved config (rank 0); return what run.json keeps of each
    (ids to find the run in the tracker, and to continue it there). A tracker that cannot
    start the run stops it: the run would go unrecorded there."""
    config = OmegaConf.to_container(cfg, resolve=True)
    found = {}
    for logger in loggers:
        entry = adapter(logger)
        kept = entry.start(config, run)
        if kept:
            found[entry.key] = kept
    return found


def finish_tracking(
    loggers: list[Logger], cfg: DictConfig, metrics: dict[str, float], run_dir: RunDir
) -> None:
    """Hand each logger the final metrics, what tells the run apart, and its record files (a
    completed run)."""
    files = [run_dir.path / name for name in (RunDir.CONFIG, RunDir.RECORD, RunDir.METRICS)]
    params = hparams_of(cfg)
    _each(loggers, "take the final metrics and files", lambda a: a.finish(metrics, params, files))


def log_image_file(loggers: list[Logger], tag: str, path: Path) -> None:
    """An image the run saved (tune=lr_find's plot) to each logger that takes images, at step 0."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    _each(loggers, f"take {path.name}", lambda a: a.log_image(tag, pixels, step=0))


def close_tracking(loggers: list[Logger], status: str) -> None:
    """End the run in each tracker with its status (completed, failed, interrupted, diverged)."""
    _each(loggers, "end the run", lambda a: a.close(status))


def discard_tracking(loggers: list[Logger]) -> None:
    """Remove the run from each tracker: it failed before it saved anything, and its run
    directory is gone."""
    _each(loggers, "remove the run", lambda a: a.discard())


def _each(loggers: list[Logger], what: str, call: Callable[[LoggerAdapter], None]) -> None:
    """`call` each logger's adapter (rank 0). The run's own files are whole without the
    trackers: one that fails says so in a line and the others go on."""
    if not is_rank_zero():
        return
    for logger in loggers:
        try:
            call(adapter(logger))
        except Exception as err:
            log.warning(
                f"genlab: warning: {type(logger).__name__} could not {what}: "
                f"{type(err).__name__}: {err}"
            )
