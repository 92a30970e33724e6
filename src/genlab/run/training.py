"""One training run in its directory: check, build data, model and trainer, fit, test the best."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import ModelSummary, ProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from genlab.callbacks.checkpoint import AtomicCheckpointIO
from genlab.callbacks.early_stopping import EarlyStop
from genlab.callbacks.safe_stop import SafeStop
from genlab.config.checks import config_errors
from genlab.config.compose import (
    adjust_for_debugging,
    evaluation_callbacks,
    instantiate_all,
    instantiate_data,
    instantiate_model,
)
from genlab.config.machine import check_multirun, cuda_devices, processes_per_run
from genlab.data.abilities import HasTokenizer, HasVocabularies
from genlab.errors import GenlabError, RunInterrupted, TrainingDiverged
from genlab.models.abilities import LearnsTokenizer, LearnsVocabularies
from genlab.models.base import GenlabModule
from genlab.run.checkpoints import (
    check_checkpoint_fits,
    checked_checkpoint,
    resolve_checkpoint,
)
from genlab.run.console import headline_metric, print_config, print_results, quiet_lightning
from genlab.run.distributed import is_rank_zero
from genlab.run.loading import with_stated_pixel_range
from genlab.run.metrics import collect_metrics, merge_metrics
from genlab.run.record import RunRecord
from genlab.run.run_dir import RunDir
from genlab.run.threads import choose_threads
from genlab.run.trackers import (
    build_loggers,
    close_tracking,
    discard_tracking,
    finish_tracking,
    log_image_file,
    start_tracking,
    tracked_run,
    tracker_problems,
)
from genlab.run.tuning import keep_tuned_value, tune
from genlab.utils.devices import use_tf32


def run(cfg: DictConfig) -> dict[str, float]:
    """Train and/or test as `cfg` says; return the final metrics (also in metrics.json)."""
    adjust_for_debugging(cfg)
    run_dir = RunDir(cfg.paths.output_dir)
    restarting = _resume_where_left_off(cfg, run_dir)
    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    in_sweep = bool(hydra_cfg) and hydra_cfg.mode == RunMode.MULTIRUN
    overrides = list(hydra_cfg.overrides.task) if hydra_cfg else []
    if in_sweep:
        check_multirun(cfg.trainer, hydra_cfg.launcher)
    try:
        if cfg.get("tune") and cfg.get("ckpt_path") and run_dir.has_config():
            keep_tuned_value(cfg, run_dir)  # a continued run is not tuned again
        ckpt_path = _checked(cfg, run_dir, restarting)
    except GenlabError:
        if not in_sweep:  # a sweep records its failed jobs in their folders
            run_dir.discard_if_unused()
        raise
    # Nothing has been written into the directory so far. Under DDP, rank 0 prepares it
    # before it starts the other ranks.
    with run_dir.locked():
        earlier = run_dir.read_record()
        if earlier and not ckpt_path:  # replaced: overwrite=true, or a run that failed
            run_dir.clear(run_dir.claimed_files(earlier.get("files")))
        # run.json first: a directory with any of the run's files in it is recognisably a run.
        record = RunRecord(cfg, run_dir, overrides)
        if in_sweep:
            record.data["job_num"] = hydra_cfg.job.num
        if ckpt_path:
            record.data["resumed_from"] = ckpt_path
            if earlier and "tuned" in earlier:  # what the first segment's tune= found
                record.data["tuned"] = earlier["tuned"]
        record.data["threads"] = _set_threads(cfg)
        use_tf32(cfg.tf32)
        tracked = tracked_run(cfg, run_dir, hydra_cfg, in_sweep, earlier if ckpt_path else None)
        if not (run_dir.path / RunDir.HYDRA).exists() and hydra_cfg is not None:
            run_dir.write_hydra_copy(cfg, hydra_cfg, overrides)
        print_config(cfg, "none" if in_sweep else cfg.get("print_config", "summary"), run_dir.path)
        run_dir.write_config(cfg)
        loggers: list[Any] = []
        try:
            plot = None
            if cfg.get("tune") and cfg.train and not ckpt_path:
                plot = _tune(cfg, run_dir, record)
            loggers = build_loggers(cfg, tracked)
            if is_rank_zero():
                record.data["trackers"] = start_tracking(loggers, cfg, tracked)
                record.write()
            if plot is not None:
                log_image_file(loggers, "tune/lr_find", plot)
            metrics = _fit_and_test(cfg, run_dir, record, ckpt_path, loggers, quiet=in_sweep)
        except BaseException as err:
            status = _status_of(err)
            record.finish(status, error=f"{type(err).__name__}: {err}")
            close_tracking(loggers, status)
            # A new run that failed before it saved anything leaves nothing behind.
            new_run_failed = status == "failed" and not ckpt_path and not in_sweep
            if new_run_failed and run_dir.discard_failed_start():
                discard_tracking(loggers)
            raise
        record.finish("completed")
        finish_tracking(loggers, cfg, metrics, run_dir)
        close_tracking(loggers, "completed")
    if not in_sweep:
        print_results(run_dir.path, metrics, headline_metric(cfg, metrics))
    return metrics


def _tune(cfg: DictConfig, run_dir: RunDir, record: RunRecord) -> Path | None:
    """tune=...: Lightning's tuner sets a value in `cfg` (genlab.run.tuning), and config.yaml and
    run.json are written again with it, so they hold what the run trains with. Returns the LR
    finder's plot, for the loggers."""
    quiet_lightning(logging.WARNING)  # the tuner's trainer: one line says what it found
    record.data["tuned"], plot = tune(cfg, run_dir, build_data_and_model)
    record.data["config"] = OmegaConf.to_container(cfg, resolve=True)
    record.write()
    run_dir.write_config(cfg)
    return plot


def _set_threads(cfg: DictConfig) -> int:
    """torch's CPU threads for this process of the run (genlab.run.threads)."""
    import torch

    trainer = OmegaConf.to_container(cfg.trainer, resolve=True)
    nodes = int(trainer.get("num_nodes", 1) or 1)
    processes = processes_per_run(trainer, cuda_devices()) // nodes  # on this machine
    threads = choose_threads(cfg.get("threads", "auto"), processes)
    torch.set_num_threads(threads)
    return threads


def _resume_where_left_off(cfg: DictConfig, run_dir: RunDir) -> bool:
    """resume=auto: ckpt_path=last when the run directory holds a last.ckpt (set in the config,
    so that config.yaml and run.json say where the run came from). True when it holds a run
    that stopped before it saved one: that run starts again there (a finished run is never
    replaced this way)."""
    if cfg.get("resume") != "auto" or cfg.get("ckpt_path"):
        return False
    if run_dir.checkpoint("last").is_file():
        cfg.ckpt_path = "last"
        return False
    earlier = run_dir.read_record()
    return earlier is not None and earlier.get("status") != "completed"


def _checked(cfg: DictConfig, run_dir: RunDir, restarting: bool = False) -> str | None:
    """Every problem of the config, the run directory and the checkpoint as one GenlabError (a
    line each); else the checkpoint to resume from, if any."""
    errors = config_errors(cfg)
    if errors:  # the checks below assume a well-formed config
        raise GenlabError("\n".join(errors))
    errors += tracker_problems(cfg)
    ckpt_path = cfg.get("ckpt_path")
    if is_rank_zero():  # other ranks would find rank 0's fresh run.json
        replacing = bool(cfg.get("overwrite")) or restarting
        problem = run_dir.ownership_problem(bool(ckpt_path), replacing)
        errors += [problem] if problem else []
    if ckpt_path:
        # Resuming in the run's own directory: the whole model and data configs are compared
        # with the run's below, and its overrides quoted, which says more than the class.
        resuming_here = cfg.get("train") and run_dir.has_config()
        target = None if resuming_here else cfg.model.get("_target_")
        errors += checked_checkpoint(ckpt_path, run_dir, target)[1]
    if not cfg.train and cfg.test and not ckpt_path:
        errors.append("train=false test=true needs ckpt_path=<checkpoint to test>")
    if errors:
        raise GenlabError("\n".join(errors))
    if not ckpt_path:
        return None
    # Other ranks: rank 0 has compared and written this run's config.yaml before starting them.
    if cfg.train and run_dir.has_config() and is_rank_zero():
        _check_same_run(cfg, run_dir)
    return str(resolve_checkpoint(ckpt_path, run_dir))


def _check_same_run(cfg: DictConfig, run_dir: RunDir) -> None:
    """Resuming in a run directory needs that run's model and data."""
    saved = run_dir.read_config()
    if cfg.model.get("value_range") is not None:
        saved = with_stated_pixel_range(saved, cfg.model.value_range)
    for group in ("model", "data"):
        if not _same_training(_what_is_trained(saved[group]), _what_is_trained(cfg[group])):
            earlier = [
                arg
                for arg in (run_dir.read_record() or {}).get("overrides", [])
                if not arg.startswith(("run_dir=", "ckpt_path="))
            ]
            raise GenlabError(
                f"{run_dir.path} was trained with a different {group} config; resume with that "
                f"run's overrides: genlab-train {' '.join(earlier)} run_dir={run_dir.path} "
                f"ckpt_path={cfg.ckpt_path}"
            )


# Keys that change how a run computes, not what it trains: a resume may set them otherwise.
_HOW_IT_RUNS = ("cache_dir", "compile", "fused", "on_device")


def _what_is_trained(group: DictConfig) -> object:
    """A config group as plain data, less where caches live (another machine or
    GENLAB_CACHE_DIR may resume the same run) and how the networks are run."""

    def strip(node: object) -> object:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _HOW_IT_RUNS}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(OmegaConf.to_container(group, resolve=True))


def _same_training(saved: object, now: object) -> bool:
    """Whether a resumed config trains what the run's saved one did. A key the saved config
    does not have came with a later genlab: that run trained with its default."""
    if isinstance(saved, dict) and isinstance(now, dict):
        return all(k in now and _same_training(v, now[k]) for k, v in saved.items())
    return saved == now


def _status_of(err: BaseException) -> str:
    if isinstance(err, (RunInterrupted, KeyboardInterrupt, SIGTERMException)):
        return "interrupted"
    return "diverged" if isinstance(err, TrainingDiverged) else "failed"


def strategy_for(strategy: Any, model: L.LightningModule) -> Any:
    """`ddp` as `ddp_find_unused_parameters_true` for a model whose steps leave parameters unused.

    A GAN's discriminator update computes no gradient for the generator (and the other way
    round): plain DDP then waits for those gradients and fails on the next step.
    """
    if strategy == "ddp" and isinstance(model, GenlabModule) and model.ddp_find_unused_parameters:
        return "ddp_find_unused_parameters_true"
    return strategy


def build_data_and_model(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    """The datamodule and model of a config. A model that learns its vocabularies from the
    data (seq2seq from scratch) is built on those of the training split; a language model on
    the data's tokenizer (a character vocabulary read from the text)."""
    datamodule = instantiate_data(cfg.data)
    model = instantiate_model(cfg.model)
    if isinstance(model, GenlabModule):
        model.divergence_check_every = cfg.get("divergence_check_every", 1)
    if isinstance(model, LearnsVocabularies) and isinstance(datamodule, HasVocabularies):
        datamodule.prepare_data()
        datamodule.setup("fit")
        model.build(datamodule.source_vocab, datamodule.target_vocab)
    if isinstance(model, LearnsTokenizer) and isinstance(datamodule, HasTokenizer):
        datamodule.prepare_data()
        model.build_on(datamodule.text_tokenizer())
    compile_mode = cfg.model.get("compile")
    if compile_mode and isinstance(model, GenlabModule):
        model.compile_networks(
            None if compile_mode is True else compile_mode,
            same_random_numbers=bool(cfg.trainer.get("deterministic")),
        )
    return datamodule, model


def _fit_and_test(
    cfg: DictConfig,
    run_dir: RunDir,
    record: RunRecord,
    ckpt_path: str | None,
    loggers: list[Any],
    quiet: bool = False,
) -> dict[str, float]:
    """`quiet` (a sweep's job): no progress bar, model summary or metrics table, and only
    Lightning's warnings; the sweep prints a line per job."""
    quiet_lightning(logging.WARNING if quiet else logging.INFO)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=not quiet)
    datamodule, model = build_data_and_model(cfg)
    if ckpt_path:
        check_checkpoint_fits(model, cfg.ckpt_path, ckpt_path)
    safe_stop = SafeStop(run_dir.checkpoints)
    # Checkpoints are written atomically unless the config brings its own plugins.
    extra: dict[str, Any] = (
        {} if cfg.trainer.get("plugins") else {"plugins": [AtomicCheckpointIO()]}
    )
    strategy = strategy_for(cfg.trainer.get("strategy", "auto"), model)
    if strategy != cfg.trainer.get("strategy", "auto"):
        extra["strategy"] = strategy
    callbacks = [*instantiate_all(cfg.get("callbacks")), *evaluation_callbacks(cfg.model)]
    if quiet:
        extra.update(enable_progress_bar=False, enable_model_summary=False)
    # Lightning's base classes: with its flag off it refuses a bar or summary of any kind.
    flags = ((ProgressBar, "enable_progress_bar"), (ModelSummary, "enable_model_summary"))
    off = tuple(kind for kind, flag in flags if not extra.get(flag, cfg.trainer.get(flag, True)))
    callbacks = [c for c in callbacks if not isinstance(c, off)]
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=[*callbacks, safe_stop],
        logger=loggers or False,
        **extra,
    )

    # Continuing in a run directory keeps what the earlier segment measured and this one does
    # not measure again (nothing left to train, test only).
    metrics = run_dir.read_metrics() if ckpt_path else {}
    try:
        if cfg.train:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            metrics = merge_metrics(metrics, collect_metrics(trainer))
            _note_early_stop(trainer, record, quiet)
            run_dir.write_metrics(metrics)
        if cfg.test:
            test_ckpt = _checkpoint_to_test(trainer, cfg, ckpt_path)
            trainer.test(
                model,
                datamodule=datamodule,
                ckpt_path=test_ckpt,
                weights_only=True,
                verbose=not quiet,
            )
            metrics = merge_metrics(metrics, collect_metrics(trainer))
            run_dir.write_metrics(metrics)
    except BaseException as err:
        interrupted = isinstance(err, KeyboardInterrupt) or (
            isinstance(err, SystemExit) and safe_stop.signal is not None
        )
        if interrupted or isinstance(err, TrainingDiverged):
            # What the run reached, marked so that nobody takes it for a finished run.
            metrics = merge_metrics(metrics, collect_metrics(trainer))
            run_dir.write_metrics(metrics, status=_status_of(err))
        if interrupted:
            raise _interrupted(trainer, safe_stop, run_dir) from err
        raise
    return metrics


def _note_early_stop(trainer: L.Trainer, record: RunRecord, quiet: bool) -> None:
    """Why training ended before max_epochs / max_steps, in run.json and on the console."""
    stopper = next((c for c in trainer.callbacks if isinstance(c, EarlyStop)), None)
    why = stopper.why() if stopper is not None else None
    if why is None:
        return
    record.data["stopped_early"] = why
    if not quiet and trainer.is_global_zero:
        print(f"genlab: stopped early after epoch {why['epoch']}: {why['message']}", flush=True)


def _interrupted(trainer: L.Trainer, safe_stop: SafeStop, run_dir: RunDir) -> RunInterrupted:
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
        command = " ".join(["genlab-train", *kept, f"run_dir={run_dir.path}", "ckpt_path=last"])
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
    stop = RunInterrupted(128 + signal.Signals[name].value)
    stop.hand_over = safe_stop.hand_over
    return stop


def _checkpoint_to_test(trainer: L.Trainer, cfg: DictConfig, ckpt_path: str | None) -> str | None:
    """The best checkpoint of this fit; without one (no checkpointing), the weights in memory."""
    if not cfg.train:
        return ckpt_path
    callback = trainer.checkpoint_callback
    return callback.best_model_path if callback is not None and callback.best_model_path else None
