"""genlab-train: compose conf/train.yaml, build data, model and trainer, fit, test the best."""

from __future__ import annotations

import warnings
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig

from genlab.config import CONFIG_PATH, instantiate_all, print_config_tree, save_resolved_config
from genlab.errors import GenlabError, user_errors_exit
from genlab.metrics import collect_metrics, log_hparams, write_metrics

# In-memory datasets are sliced a batch at a time; worker processes would only add overhead.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")


def run(cfg: DictConfig) -> dict[str, float]:
    """Train and/or test as `cfg` says; return the final metrics (also in metrics.json)."""
    run_dir = Path(cfg.paths.output_dir)
    print_config_tree(cfg)
    save_resolved_config(cfg, run_dir)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    if not cfg.train and cfg.test and not cfg.ckpt_path:
        raise GenlabError("train=false test=true needs ckpt_path=<checkpoint to test>")

    # Plain lists, not ListConfig, so hyperparameters in checkpoints load with weights_only=True.
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=instantiate_all(cfg.get("callbacks")),
        logger=instantiate_all(cfg.get("logger")) or False,
    )

    metrics: dict[str, float] = {}
    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        metrics.update(collect_metrics(trainer))
        write_metrics(trainer, run_dir, metrics)
    if cfg.test:
        trainer.test(model, datamodule=datamodule, ckpt_path=_checkpoint_to_test(trainer, cfg))
        metrics.update(collect_metrics(trainer))
        write_metrics(trainer, run_dir, metrics)
    log_hparams(trainer, cfg, metrics)
    return metrics


def _checkpoint_to_test(trainer: L.Trainer, cfg: DictConfig) -> str | None:
    """The best checkpoint of this fit; without one (no checkpointing), the weights in memory."""
    if not cfg.train:
        return cfg.ckpt_path
    callback = trainer.checkpoint_callback
    return callback.best_model_path if callback is not None and callback.best_model_path else None


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    with user_errors_exit():
        metrics = run(cfg)
    optimized = cfg.get("optimized_metric")
    return metrics.get(optimized) if optimized else None


if __name__ == "__main__":
    main()
