"""Testing a finished run's checkpoint on its own data, from its own saved config."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from genlab.config.compose import evaluation_callbacks
from genlab.errors import GenlabError
from genlab.run.checkpoints import resolve_checkpoint
from genlab.run.loading import load_run
from genlab.run.metrics import collect_metrics
from genlab.run.run_dir import RunDir
from genlab.utils.atomic import creation_problem
from genlab.utils.devices import use_tf32


def evaluate_run(
    run_dir: str | Path | None = None, ckpt_path: str | None = None
) -> tuple[dict[str, float], Path]:
    """Test metrics of a run's checkpoint (best by default), and that checkpoint's path; both
    written to eval_metrics.json.

    The same numbers as the test metrics recorded at the end of training: the same config,
    seed, precision and evaluators (FID/KID for GANs), on one device.
    """
    if run_dir is None and ckpt_path in (None, "best", "last"):
        raise GenlabError("give run_dir=<run directory> or ckpt_path=<checkpoint file>")
    checkpoint = ckpt_path or "best"
    run = (
        RunDir(run_dir)
        if run_dir is not None
        else RunDir.of_checkpoint(resolve_checkpoint(checkpoint, RunDir(".")))
    )
    problem = creation_problem(run.path)
    if problem:  # before the test, which would run for nothing
        raise GenlabError(f"cannot write {run.path / RunDir.EVAL_METRICS}: {problem}")
    tested = resolve_checkpoint(checkpoint, run).resolve()
    model, datamodule, cfg = load_run(run.path, str(tested))
    if "tf32" in cfg:  # as in training; runs saved before the key trained with torch's defaults
        use_tf32(cfg.tf32)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    trainer = L.Trainer(
        accelerator=cfg.trainer.get("accelerator", "auto"),
        devices=1,
        precision=cfg.trainer.get("precision", "32-true"),
        callbacks=evaluation_callbacks(cfg.model),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = collect_metrics(trainer)
    run.write_eval_metrics(metrics, tested)
    return metrics, tested
