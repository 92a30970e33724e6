"""Checking a composed config before anything is built: one line per problem, each naming the
key, its value and what is allowed.

`quick_config_errors` answers at once, without importing torch or Lightning: values that are
missing or do not resolve, classes the config may not build (`genlab.config.targets`), loggers
whose package is not installed, every value against the rule of its name
(`genlab.config.rules`), keys the configured classes do not take and data of another kind than
the model's (both read from the classes' source,
`genlab.config.classes`), the trainer against this machine (`genlab.config.machine`), the
data's pixel range against the model's, and a `tune=` finder against the model, the data and
the trainer. `config_errors` then imports the configured model and
datamodule classes and adds what they say of their own config (their `config_problems`). The
run directory and the checkpoint to load are checked by `genlab.run`, which knows them.
"""

from __future__ import annotations

import difflib
import importlib.util
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genlab.config.classes import class_info
from genlab.config.compose import MODEL_RUN_KEYS
from genlab.config.machine import cuda_devices, processes_per_run, trainer_errors
from genlab.config.rules import leaves, rule_errors, show
from genlab.config.targets import target_errors

# The data options that give each kind of data a model trains on (GenlabModule.data_kind).
_DATA_OPTIONS = {
    "images": "data=digits, mnist, fashion_mnist, cifar10, celeba or image_folder",
    "token blocks": "data=text",
    "sentence pairs": "data=translation",
}
# Where tune=... sets the value it finds (genlab.run.tuning), each finder's searches, and what a
# config without that key needs.
TUNED_KEYS = {"lr_find": "model.optimizer.lr", "batch_size": "data.batch_size"}
_TUNE_MODES = {"lr_find": ("exponential", "linear"), "batch_size": ("power", "binsearch")}
_TUNE_NEEDS = {
    "lr_find": "give the model an optimizer config with an lr",
    "batch_size": "use a datamodule that takes a batch_size",
}
# Lightning's loggers that need a package of their own: (module, what to pip install).
_LOGGER_PACKAGES = {
    "MLFlowLogger": ("mlflow", "'genlab[mlflow]'"),
    "WandbLogger": ("wandb", "'genlab[wandb]'"),
    "CometLogger": ("comet_ml", "comet-ml"),
    "NeptuneLogger": ("neptune", "neptune"),
}
# Hydra's own keys of a node it instantiates, which are no arguments of the class.
_HYDRA_KEYS = {"_target_", "_partial_", "_args_", "_convert_", "_recursive_"}


def config_errors(cfg: DictConfig) -> list[str]:
    """Every problem of `cfg`, one line each; empty when it can be built."""
    errors = quick_config_errors(cfg)
    if errors:  # the classes' own rules assume a well-formed config
        return errors
    return class_errors(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))


def quick_config_errors(cfg: DictConfig) -> list[str]:
    """The problems found without importing a model, a datamodule, torch or Lightning."""
    mismatch = _data_kind_error(cfg)
    if mismatch:  # the other problems would follow from this one
        return [mismatch]
    try:
        tree = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        return [f"{getattr(err, 'full_key', '?')}: cannot resolve it: {message}"]
    errors = [
        f"{key}: no value given (??? in the config): set {key}=..."
        for key, _, value in leaves(tree)
        if value == "???"
    ]
    errors += target_errors(tree)
    errors += missing_package_errors(tree)
    errors += unknown_key_errors(tree)
    # tune.mode is a finder's search, not min/max: tune_errors checks it.
    errors += rule_errors(tree, skip=_interpolated(cfg) | {"tune.mode"})
    if errors:  # the checks below assume well-typed values
        return errors
    errors += trainer_errors(tree.get("trainer") or {})
    errors += pixel_range_errors(tree.get("model") or {}, tree.get("data") or {})
    errors += monitor_errors(tree)
    errors += tune_errors(tree)
    errors += deferred_check_errors(tree)
    return errors


def deferred_check_errors(tree: dict[str, Any]) -> list[str]:
    """divergence_check_every > 1 skips bad updates through the fused optimizers' `found_inf`:
    every optimizer of the model must be fused."""
    every = tree.get("divergence_check_every", 1)
    model = tree.get("model") or {}
    unfused = [
        f"model.{key}"
        for key, node in model.items()
        if key.endswith("optimizer") and isinstance(node, dict) and node.get("fused") is not True
    ]
    if not isinstance(every, int) or every <= 1:
        return []
    if str((tree.get("trainer") or {}).get("precision")) in ("16-mixed", "16"):
        return [
            f"divergence_check_every={every} with trainer.precision=16-mixed: the gradient "
            f"scaler sets the optimizers' skip flag itself; use bf16-mixed or "
            f"divergence_check_every=1"
        ]
    if not unfused:
        return []
    return [
        f"divergence_check_every={every} skips the updates after a NaN or infinite loss on the "
        f"device, which fused optimizers do: set {' '.join(k + '.fused=true' for k in unfused)} "
        f"(Adam, AdamW, SGD), or divergence_check_every=1"
    ]


def tune_errors(tree: dict[str, Any]) -> list[str]:
    """tune=lr_find finds the one learning rate of a model with one optimizer (the GANs have
    two) and sets it as model.optimizer.lr; tune=batch_size sets data.batch_size. Lightning's
    tuner runs in one process."""
    tune = tree.get("tune")
    if not isinstance(tune, dict):
        return []
    finder = tune.get("finder")
    if finder not in TUNED_KEYS:
        return ["tune.finder: not set; choose tune=lr_find or tune=batch_size"]
    errors = []
    mode, modes = tune.get("mode"), _TUNE_MODES[finder]
    if mode not in modes:
        errors.append(f"tune.mode={show(mode)}: must be {' or '.join(modes)} for tune={finder}")
    info = _info((tree.get("model") or {}).get("_target_"))
    optimizers = info.attributes.get("num_optimizers", 1) if info else 1
    if finder == "lr_find" and optimizers != 1:
        errors.append(
            f"tune=lr_find: {info.name} (model) trains with {optimizers} optimizers, and "
            "Lightning's learning-rate finder tunes a model with one; set their learning rates "
            "in the model config instead"
        )
    elif not _has(tree, TUNED_KEYS[finder]):
        errors.append(
            f"tune={finder} sets {TUNED_KEYS[finder]}, which this config does not have: "
            f"{_TUNE_NEEDS[finder]}"
        )
    low, high = tune.get("min_lr"), tune.get("max_lr")
    if finder == "lr_find" and not low < high:
        errors.append(f"tune.min_lr={show(low)} must be below tune.max_lr={show(high)}")
    processes = processes_per_run(tree.get("trainer") or {}, cuda_devices())
    if processes > 1:
        errors.append(
            f"tune={finder} runs Lightning's tuner in one process, and this trainer starts "
            f"{processes} (trainer.devices x trainer.num_nodes): tune with trainer.devices=1, "
            "then train with the value it finds"
        )
    return errors


def _has(tree: dict[str, Any], key: str) -> bool:
    """Whether a dotted key is in the config."""
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def monitor_errors(tree: dict[str, Any]) -> list[str]:
    """A checkpoint that keeps the best `val/fid` or `val/kid` needs them measured while
    training (`model.eval`)."""
    checkpoint = (tree.get("callbacks") or {}).get("model_checkpoint") or {}
    monitor = checkpoint.get("monitor") if isinstance(checkpoint, dict) else None
    if monitor not in ("val/fid", "val/kid"):
        return []
    settings = (tree.get("model") or {}).get("eval") or {}
    if settings.get("features") not in (None, "none") and settings.get("val_every_n_epochs"):
        return []
    return [
        f"callbacks.model_checkpoint.monitor={monitor} is measured only with "
        "model.eval.val_every_n_epochs >= 1 (and model.eval.features classifier or inception): "
        "set it, or monitor another metric"
    ]


def class_errors(tree: dict[str, Any]) -> list[str]:
    """What the configured model and datamodule classes say of their own config (this imports
    them, and with them torch and Lightning)."""
    import hydra

    from genlab.data.splits import SplitDataModule
    from genlab.models.base import GenlabModule

    errors = []
    for group, base in (("model", GenlabModule), ("data", SplitDataModule)):
        target = (tree.get(group) or {}).get("_target_")
        try:
            cls = hydra.utils.get_class(target) if isinstance(target, str) else None
        except Exception:  # Hydra reports a class it cannot import when it builds it
            cls = None
        if isinstance(cls, type) and issubclass(cls, base):
            errors += cls.config_problems(tree)
            if group == "model":
                errors += _early_stopping_errors(tree, cls)
    return errors


def _early_stopping_errors(tree: dict[str, Any], model_class: type) -> list[str]:
    """Early stopping on `auto` needs a model that names the metric it is judged by."""
    callbacks = tree.get("callbacks") or {}
    stopper = callbacks.get("early_stopping") if isinstance(callbacks, dict) else None
    if not isinstance(stopper, dict) or stopper.get("monitor") != "auto":
        return []
    if model_class.checkpoint_monitor is not None:
        return []
    return [
        f"callbacks.early_stopping.monitor=auto: {model_class.__name__} has no validation "
        f"metric that tracks its quality; name one it logs, e.g. "
        f"callbacks.early_stopping.monitor=val/fid (with model.eval.val_every_n_epochs=1)"
    ]


def missing_package_errors(tree: dict[str, Any]) -> list[str]:
    """Loggers whose package is not installed, with the command that installs it."""
    errors = []
    loggers = tree.get("logger")
    for name, node in (loggers if isinstance(loggers, dict) else {}).items():
        target = node.get("_target_") if isinstance(node, dict) else None
        if not isinstance(target, str) or not target.startswith("lightning.pytorch.loggers."):
            continue
        package, requirement = _LOGGER_PACKAGES.get(target.rsplit(".", 1)[-1], (None, None))
        if package and not _installed(package):
            errors.append(
                f"logger.{name} needs the {package} package, which is not installed: "
                f"pip install {requirement}"
            )
    return errors


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def unknown_key_errors(tree: dict[str, Any]) -> list[str]:
    """Keys of the model, data and trainer configs that their class does not take (a typo, or a
    key added with +), with the closest one it takes."""
    errors = []
    for group in ("model", "data", "trainer"):
        node = tree.get(group)
        if not isinstance(node, dict) or not isinstance(node.get("_target_"), str):
            continue
        info = class_info(node["_target_"])
        if info is None or info.parameters is None:
            continue  # its arguments cannot be read: the class checks them when it is built
        known = set(info.parameters) | (set(MODEL_RUN_KEYS) if group == "model" else set())
        for key in sorted(set(node) - known - _HYDRA_KEYS):
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = (
                f"did you mean {group}.{close[0]}?"
                if close
                else "it takes: " + ", ".join(f"{group}.{k}" for k in sorted(known))
            )
            errors.append(f"{group}.{key}: {info.name} takes no such argument; {hint}")
    return errors


def _data_kind_error(cfg: DictConfig) -> str | None:
    """A model given data of another kind (GPT-2 on images, a VAE on text)."""
    model = _info(OmegaConf.select(cfg, "model._target_", throw_on_missing=False))
    data = _info(OmegaConf.select(cfg, "data._target_", throw_on_missing=False))
    if model is None or data is None:
        return None
    wanted, given = model.attributes.get("data_kind"), data.attributes.get("data_kind")
    if wanted is None or given is None or wanted == given:
        return None
    return (
        f"{model.name} (model) trains on {wanted}, and {data.name} (data) gives {given}: "
        f"choose {_DATA_OPTIONS.get(wanted, 'other data')}"
    )


def _info(target: Any):
    return class_info(target) if isinstance(target, str) else None


def _interpolated(node: Any, prefix: str = "") -> set[str]:
    """Dotted keys whose value is an interpolation (`input_shape: ${data.dims}`): checked where
    the value is stated, so one mistake is reported once."""
    if not isinstance(node, DictConfig):
        return set()
    found = set()
    for key in node:
        if OmegaConf.is_interpolation(node, key):
            found.add(f"{prefix}{key}")
        elif OmegaConf.is_missing(node, key):
            continue
        elif isinstance(node[key], ListConfig):
            # A list built from other keys ([${data.channels}, ${data.image_size}, ...]).
            items = node[key]
            if any(OmegaConf.is_interpolation(items, i) for i in range(len(items))):
                found.add(f"{prefix}{key}")
        else:
            found |= _interpolated(node[key], f"{prefix}{key}.")
    return found


def pixel_range_errors(model: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """The data must be scaled to the range the model takes (`${model.value_range}`, unless a
    user sets `data.value_range` to something else)."""
    wanted, given = model.get("value_range"), data.get("value_range")
    if wanted is None or given is None or list(map(float, wanted)) == list(map(float, given)):
        return []
    name = str(model.get("_target_", "the model")).rsplit(".", 1)[-1]
    return [
        f"data.value_range={list(given)}: {name} takes pixels in model.value_range="
        f"{list(wanted)}; leave data.value_range unset, it follows the model's"
    ]
