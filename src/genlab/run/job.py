"""One genlab-train job as Hydra runs it, for the console script and for Python alike."""

from __future__ import annotations

import signal
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from genlab.config.checks import quick_config_errors
from genlab.config.compose import CONFIG_PATH, with_trainer_keys_added_or_set
from genlab.errors import GenlabError, RunInterrupted, user_errors_exit
from genlab.run.console import (
    forget_removed_log_files,
    lightning_logs_to_run_log,
    quiet_known_warnings,
)
from genlab.run.resolvers import register_resolvers
from genlab.run.run_dir import RunDir

CONFIG_NAME = "train"


def prepare() -> None:
    """What every entry point sets up before Hydra composes a config."""
    register_resolvers()
    quiet_known_warnings()


def job(cfg: DictConfig) -> float | None:
    """Hydra's task function: one run; returns the `optimized_metric` to a sweeper, if set.

    In a sweep, errors stay exceptions so Hydra records the job as failed and the sweep goes
    on; in a single run, a user error becomes one line and exit code 2. SIGINT or SIGTERM ends
    the process (RunInterrupted), in a sweep too.
    """
    metrics = _run(cfg)
    metric = cfg.get("optimized_metric")
    if not metric:
        return None
    if metric not in metrics:
        raise GenlabError(f"optimized_metric={metric} was not logged; logged: {sorted(metrics)}")
    return metrics[metric]


def _run(cfg: DictConfig) -> dict[str, float]:
    lightning_logs_to_run_log()
    try:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            return _checked_run(cfg)
        with user_errors_exit():
            return _checked_run(cfg)
    except KeyboardInterrupt:  # outside training: there is nothing to save
        print("genlab: interrupted by SIGINT", file=sys.stderr, flush=True)
        raise RunInterrupted(128 + signal.SIGINT.value) from None
    except RunInterrupted as stop:
        if stop.hand_over is not None:  # saved and recorded: now the cluster requeues the job
            stop.hand_over()
        raise
    finally:
        forget_removed_log_files()


def _checked_run(cfg: DictConfig) -> dict[str, float]:
    """The run, once the config's quick checks pass: torch and Lightning are imported only then,
    so that a config error answers at once."""
    problems = quick_config_errors(cfg)
    if problems:
        if HydraConfig.get().mode != RunMode.MULTIRUN:  # a sweep records its failed jobs
            RunDir(cfg.paths.output_dir).discard_if_unused()
        raise GenlabError("\n".join(problems))
    from genlab.run.training import run

    return run(cfg)


def train(overrides: list[str] | None = None) -> dict[str, float]:
    """Run one training job from Python, exactly as genlab-train would; return its final
    metrics (also in the run directory's metrics.json)."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    prepare()
    GlobalHydra.instance().clear()
    app = Hydra.create_main_hydra2(CONFIG_NAME, create_config_search_path(CONFIG_PATH))
    try:
        result = app.run(
            config_name=CONFIG_NAME,
            task_function=_run,
            overrides=with_trainer_keys_added_or_set(list(overrides or [])),
        )
    finally:
        GlobalHydra.instance().clear()
    return result.return_value
