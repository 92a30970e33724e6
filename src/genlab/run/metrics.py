"""Final metrics of a run: collected from the trainer, merged across segments of a continued run
(RunDir writes them to metrics.json); and what tells a run apart, shown beside them by the
trackers (TensorBoard's HPARAMS tab)."""

from __future__ import annotations

from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf


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


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}/"))
        return flat
    value = tree if isinstance(tree, (int, float, str, bool)) else str(tree)
    return {prefix.rstrip("/"): value}


# Overrides that say where a run is, not what it is.
_PLACES = ("run_dir", "ckpt_path", "overwrite", "hydra.", "paths.", "print_config")


def hparams_of(cfg: DictConfig) -> dict[str, Any]:
    """What tells runs apart: the config groups chosen, the seed, the tags, and each key the
    command line set, with its resolved value (the whole config, mostly the same in every run,
    is in the run's config.yaml)."""
    from hydra.core.hydra_config import HydraConfig

    params: dict[str, Any] = {"seed": cfg.get("seed")}
    if cfg.get("tags"):
        params["tags"] = ",".join(cfg.tags)
    if not HydraConfig.initialized():
        return params
    hydra = HydraConfig.get()
    for group in ("experiment", "model", "data", "trainer", "accelerator"):
        if hydra.runtime.choices.get(group):
            params[group] = hydra.runtime.choices[group]
    for override in hydra.overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        if key.startswith(_PLACES) or key in params:
            continue
        value = OmegaConf.select(cfg, key, default=None)
        params.update(
            _flatten(OmegaConf.to_container(value, resolve=True), f"{key}/")
            if isinstance(value, DictConfig)
            else {key: value}
        )
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in params.items()}
