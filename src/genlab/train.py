"""genlab-train: compose conf/train.yaml, build data, model and trainer, fit, test the best.

From Python, `genlab.train(["model=ae", "trainer.max_epochs=3"])` runs the same job as
`genlab-train model=ae trainer.max_epochs=3` and returns its final metrics.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import sys
import types
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from genlab.callbacks.checkpoint import AtomicCheckpointIO
from genlab.callbacks.safe_stop import SafeStop
from genlab.config import CONFIG_PATH, instantiate_all, print_config_tree, save_resolved_config
from genlab.distributed import check_multirun, is_rank_zero, strategy_for
from genlab.errors import GenlabError, RunInterrupted, TrainingDiverged, user_errors_exit
from genlab.metrics import (
    collect_metrics,
    log_hparams,
    merge_metrics,
    read_metrics,
    write_metrics,
)
from genlab.run_record import RunRecord, read_record
from genlab.runs import clear_run_outputs, load_config, resolve_checkpoint
from genlab.validation import check_checkpoint_fits, validate


def run(cfg: DictConfig) -> dict[str, float]:
    """Train and/or test as `cfg` says; return the final metrics (also in metrics.json)."""
    run_dir = Path(cfg.paths.output_dir)
    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    overrides = list(hydra_cfg.overrides.task) if hydra_cfg else []
    if hydra_cfg and hydra_cfg.mode == RunMode.MULTIRUN:
        check_multirun(cfg.trainer, hydra_cfg.launcher)
    try:
        validate(cfg, run_dir)
        ckpt_path = _checkpoint_to_resume(cfg, run_dir)
    except GenlabError:
        if not (hydra_cfg and hydra_cfg.mode == RunMode.MULTIRUN):  # a sweep records its jobs
            _discard_unused(run_dir)
        raise
    # Under DDP, rank 0 prepares the directory before it starts the other ranks.
    if cfg.get("overwrite") and not ckpt_path and is_rank_zero():
        clear_run_outputs(run_dir)
    print_config_tree(cfg)
    save_resolved_config(cfg, run_dir)
    record = RunRecord(cfg, run_dir, overrides)
    if hydra_cfg and hydra_cfg.mode == RunMode.MULTIRUN:
        record.data["job_num"] = hydra_cfg.job.num
    if ckpt_path:
        record.data["resumed_from"] = str(ckpt_path)
    try:
        metrics = _fit_and_test(cfg, run_dir, ckpt_path)
    except BaseException as err:
        record.finish(_status_of(err), error=f"{type(err).__name__}: {err}")
        raise
    record.finish("completed")
    return metrics


def _discard_unused(run_dir: Path) -> None:
    """A refused run leaves no folder behind: one Hydra made for it holds only its config copy
    and log (a run directory of an earlier run has more, and is kept)."""
    unused = run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".hydra", "train.log"}
    if unused and is_rank_zero():
        shutil.rmtree(run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # outputs/<name>/, if this was its only run
            run_dir.parent.rmdir()


def _status_of(err: BaseException) -> str:
    if isinstance(err, (RunInterrupted, KeyboardInterrupt, SIGTERMException)):
        return "interrupted"
    return "diverged" if isinstance(err, TrainingDiverged) else "failed"


def _checkpoint_to_resume(cfg: DictConfig, run_dir: Path) -> str | None:
    """The checkpoint path, checked; resuming in a run directory needs that run's model and data."""
    if not cfg.ckpt_path:
        return None
    path = resolve_checkpoint(cfg.ckpt_path, run_dir)
    previous = run_dir / "config.yaml"
    # Other ranks: rank 0 has compared and written this run's config.yaml before starting them.
    if cfg.train and previous.is_file() and is_rank_zero():
        saved = load_config(run_dir)
        for group in ("model", "data"):
            if _what_is_trained(saved[group]) != _what_is_trained(cfg[group]):
                earlier = [
                    arg
                    for arg in (read_record(run_dir) or {}).get("overrides", [])
                    if not arg.startswith(("run_dir=", "ckpt_path="))
                ]
                raise GenlabError(
                    f"{run_dir} was trained with a different {group} config; resume with that "
                    f"run's overrides: genlab-train {' '.join(earlier)} run_dir={run_dir} "
                    f"ckpt_path={cfg.ckpt_path}"
                )
    return str(path)


def _what_is_trained(group: DictConfig) -> object:
    """A config group as plain data, less where caches live (another machine or
    GENLAB_CACHE_DIR may resume the same run)."""

    def strip(node: object) -> object:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "cache_dir"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(OmegaConf.to_container(group, resolve=True))


def _fit_and_test(cfg: DictConfig, run_dir: Path, ckpt_path: str | None) -> dict[str, float]:
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    if not cfg.train and cfg.test and not ckpt_path:
        raise GenlabError("train=false test=true needs ckpt_path=<checkpoint to test>")

    # Plain lists, not ListConfig, so hyperparameters in checkpoints load with weights_only=True.
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    if ckpt_path:
        check_checkpoint_fits(model, cfg.ckpt_path, ckpt_path)
    safe_stop = SafeStop(run_dir / "checkpoints")
    # Checkpoints are written atomically unless the config brings its own plugins.
    extra = {} if cfg.trainer.get("plugins") else {"plugins": [AtomicCheckpointIO()]}
    strategy = strategy_for(cfg.trainer.get("strategy", "auto"), model)
    if strategy != cfg.trainer.get("strategy", "auto"):
        extra["strategy"] = strategy
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=[*instantiate_all(cfg.get("callbacks")), safe_stop],
        logger=instantiate_all(cfg.get("logger")) or False,
        **extra,
    )

    # Continuing in a run directory keeps what the earlier segment measured and this one does
    # not measure again (nothing left to train, test only).
    metrics = read_metrics(run_dir) if ckpt_path else {}
    try:
        if cfg.train:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            metrics = merge_metrics(metrics, collect_metrics(trainer))
            write_metrics(trainer, run_dir, metrics)
        if cfg.test:
            test_ckpt = _checkpoint_to_test(trainer, cfg, ckpt_path)
            trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt, weights_only=True)
            metrics = merge_metrics(metrics, collect_metrics(trainer))
            write_metrics(trainer, run_dir, metrics)
    except BaseException as err:
        interrupted = isinstance(err, KeyboardInterrupt) or (
            isinstance(err, SystemExit) and safe_stop.signal is not None
        )
        if interrupted or isinstance(err, TrainingDiverged):
            # What the run reached, marked so that nobody takes it for a finished run.
            metrics = merge_metrics(metrics, collect_metrics(trainer))
            write_metrics(trainer, run_dir, metrics, status=_status_of(err))
        if interrupted:
            raise _interrupted(trainer, safe_stop, run_dir) from err
        raise
    log_hparams(trainer, cfg, metrics)
    return metrics


def _interrupted(trainer: L.Trainer, safe_stop: SafeStop, run_dir: Path) -> RunInterrupted:
    """Say where the run stopped and how to resume it; exit 128 + the signal number."""
    name = safe_stop.signal or "SIGINT"
    last = safe_stop.saved or safe_stop.last_path(trainer)
    if last.is_file():
        hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
        dropped = ("run_dir", "ckpt_path", "overwrite", "hydra.run.dir")
        kept = [
            o
            for o in (hydra_cfg.overrides.task if hydra_cfg else [])
            if o.split("=")[0].lstrip("+~") not in dropped
        ]
        command = " ".join(["genlab-train", *kept, f"run_dir={run_dir}", "ckpt_path=last"])
        saved = "saved" if safe_stop.saved else "last checkpoint"
        after = f"{saved} {last}; resume with: {command}"
    else:
        after = "no checkpoint was saved"
    if trainer.is_global_zero:
        print(
            f"genlab: interrupted by {name} at epoch {trainer.current_epoch}, step "
            f"{trainer.global_step}; {after}",
            file=sys.stderr,
            flush=True,
        )
    return RunInterrupted(128 + signal.Signals[name].value)


def _checkpoint_to_test(trainer: L.Trainer, cfg: DictConfig, ckpt_path: str | None) -> str | None:
    """The best checkpoint of this fit; without one (no checkpointing), the weights in memory."""
    if not cfg.train:
        return ckpt_path
    callback = trainer.checkpoint_callback
    return callback.best_model_path if callback is not None and callback.best_model_path else None


def _lightning_logs_to_run_log() -> None:
    """Lightning, imported before Hydra configures logging, gives its loggers a console handler
    of their own and cuts them off from the root logger, so its lines (devices, why fit stopped)
    would miss the run's train.log. Hand them the root logger's files too (console unchanged)."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        if logger.propagate:
            continue  # the root logger's handlers see its lines already
        for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
            logger.removeHandler(handler)  # an earlier in-process run's log file
        for handler in files:
            logger.addHandler(handler)


def _task(cfg: DictConfig) -> dict[str, float]:
    """One job. In a sweep, errors stay exceptions so Hydra records the job as failed and the
    sweep goes on; in a single run, a user error becomes one line and exit code 2. SIGINT or
    SIGTERM ends the process (RunInterrupted), in a sweep too."""
    _lightning_logs_to_run_log()
    try:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            return run(cfg)
        with user_errors_exit():
            return run(cfg)
    except KeyboardInterrupt:  # outside training: there is nothing to save
        print("genlab: interrupted by SIGINT", file=sys.stderr, flush=True)
        raise RunInterrupted(128 + signal.SIGINT.value) from None


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = _task(cfg)
    metric = cfg.get("optimized_metric")
    if not metric:
        return None
    if metric not in metrics:
        raise GenlabError(f"optimized_metric={metric} was not logged; logged: {sorted(metrics)}")
    return metrics[metric]


def train(overrides: list[str] | None = None) -> dict[str, float]:
    """Run one training job from Python, exactly as the CLI would; return its final metrics."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    app = Hydra.create_main_hydra2("train", create_config_search_path(CONFIG_PATH))
    try:
        job = app.run(config_name="train", task_function=_task, overrides=list(overrides or []))
    finally:
        GlobalHydra.instance().clear()
    return job.return_value


class _CallableModule(types.ModuleType):
    """Lets `genlab.train(...)` call `train` while `python -m genlab.train` stays the CLI."""

    def __call__(self, overrides: list[str] | None = None) -> dict[str, float]:
        return train(overrides)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    main()
