"""Where the Hydra configs live, and building the parts a composed config describes."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

# `conf/` at the repository root is installed as the package `genlab.conf` (see pyproject.toml),
# so the configs are found from any working directory, editable install or not.
CONFIG_PATH = "pkg://genlab.conf"

# Keys of a model config that say how a run uses the model, not arguments of its class: how to
# evaluate it (`eval`) and whether to compile its networks (`compile`).
MODEL_RUN_KEYS = ("eval", "compile")


def with_trainer_keys_added_or_set(overrides: list[str]) -> list[str]:
    """`+trainer.KEY=V` as `++trainer.KEY=V` (add or set): Lightning's everyday keys are in the
    trainer config now, and Hydra refuses to add a key that is there, so commands written when
    they had to be added (`+trainer.limit_train_batches=2`) keep working."""
    return ["+" + o if o.startswith("+trainer.") else o for o in overrides]


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a group such as `callbacks` or `logger`; null entries are off."""
    if not group:
        return []
    return [hydra.utils.instantiate(node) for node in group.values() if node is not None]


def instantiate_model(model: DictConfig) -> Any:
    """The LightningModule of a `model` config, without its evaluation settings (`eval`)."""
    resolved = OmegaConf.to_container(model, resolve=True)
    arguments = {k: v for k, v in resolved.items() if k not in MODEL_RUN_KEYS}
    for key, node in arguments.items():
        # `fused: null` in the configs is the optimizer's default; not every optimizer takes it.
        if key.endswith("optimizer") and isinstance(node, dict) and node.get("fused") is None:
            node.pop("fused", None)
    # Plain lists, not ListConfig, so hyperparameters in checkpoints load with weights_only=True.
    return hydra.utils.instantiate(arguments, _convert_="all")


def instantiate_data(data: DictConfig) -> Any:
    return hydra.utils.instantiate(data, _convert_="all")


def adjust_for_debugging(cfg: DictConfig) -> None:
    """What the trainer's debugging settings ask of the data: the very same batches every epoch
    when overfitting a few (no augmentation), and data loaded in the training process under
    anomaly detection (no workers, so a debugger reaches it). Set in the config itself, so that
    the run's config.yaml says what ran."""
    trainer, data = cfg.trainer, cfg.data
    if trainer.get("overfit_batches") and data.get("augment"):
        data.augment = []
    if trainer.get("detect_anomaly") and data.get("num_workers"):
        data.num_workers = 0


def evaluation_callbacks(model: DictConfig) -> list[Any]:
    """The evaluators a model config's `eval` block asks for: FID/KID (`features`: classifier or
    inception; none or null for no evaluator)."""
    settings = model.get("eval")
    if not settings or settings.get("features") in (None, "none"):
        return []
    from genlab.callbacks.sample_quality import SampleQualityMetrics

    return [SampleQualityMetrics(**OmegaConf.to_container(settings, resolve=True))]
