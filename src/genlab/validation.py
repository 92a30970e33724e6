"""Checking a composed config before anything is built: one line per problem, each naming the
key, its value and what is allowed.

`RULES` is the schema of the common keys, by their last name: it applies wherever the name
appears (`data.batch_size`, `model.optimizer.lr`, `model.generator_optimizer.lr`, ...), so a
model or datamodule that lands later is checked as soon as it uses the common names. The checks
after it relate several keys: precision, accelerator and devices against this machine, the data's
block size against the model's context, the checkpoint to load, and the run directory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genlab.distributed import is_rank_zero
from genlab.errors import GenlabError
from genlab.nn.dcgan import shape_problem
from genlab.run_record import read_record
from genlab.runs import load_checkpoint, resolve_checkpoint, run_dir_of


@dataclass(frozen=True)
class Rule:
    """What a value must be: `allowed` says it in words for the error line, `test` checks it."""

    allowed: str
    test: Callable[[Any], bool]
    nullable: bool = False

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        return self.test(value)

    def or_null(self) -> Rule:
        return Rule(f"{self.allowed}, or null", self.test, nullable=True)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


INTEGER = Rule("an integer", _is_int)
POSITIVE_INT = Rule("a positive integer", lambda v: _is_int(v) and v > 0)
NON_NEGATIVE_INT = Rule("an integer >= 0", lambda v: _is_int(v) and v >= 0)
POSITIVE_NUMBER = Rule("a positive number", lambda v: _is_number(v) and v > 0)
NON_NEGATIVE_NUMBER = Rule("a number >= 0", lambda v: _is_number(v) and v >= 0)
FRACTION = Rule("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1)
LIMIT = Rule("a positive integer, or -1 for no limit", lambda v: _is_int(v) and (v > 0 or v == -1))
SIZES = Rule(
    "a list of positive integers",
    lambda v: isinstance(v, list) and all(_is_int(x) and x > 0 for x in v),
)
BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool))

# The schema of the keys every model and datamodule shares, by the key's last name.
RULES: dict[str, Rule] = {
    # data
    "batch_size": POSITIVE_INT,
    "block_size": POSITIVE_INT,
    "image_size": POSITIVE_INT,
    "channels": POSITIVE_INT,
    "dims": SIZES,
    "val_size": POSITIVE_INT,
    "val_fraction": FRACTION,
    "test_fraction": FRACTION,
    "num_workers": NON_NEGATIVE_INT,
    "split_seed": NON_NEGATIVE_INT,
    "on_bad_image": Rule("fail or skip", lambda v: v in ("fail", "skip")),
    "num_examples": POSITIVE_INT,
    "max_number": NON_NEGATIVE_INT,
    "max_length": POSITIVE_INT,
    "source_level": Rule("word or char", lambda v: v in ("word", "char")),
    "target_level": Rule("word or char", lambda v: v in ("word", "char")),
    # model
    "input_shape": SIZES,
    "latent_dim": POSITIVE_INT,
    "hidden_dims": SIZES,
    "generator_dims": SIZES,
    "discriminator_dims": SIZES,
    "n_layer": POSITIVE_INT,
    "n_head": POSITIVE_INT,
    "n_embd": POSITIVE_INT,
    "n_positions": POSITIVE_INT,
    "d_model": POSITIVE_INT,
    "n_heads": POSITIVE_INT,
    "n_encoder_layers": POSITIVE_INT,
    "n_decoder_layers": POSITIVE_INT,
    "d_ff": POSITIVE_INT,
    "max_len": POSITIVE_INT,
    "dropout": FRACTION,
    "label_smoothing": FRACTION,
    "discriminator_steps": POSITIVE_INT,
    "discriminator_norm": Rule("batch or spectral", lambda v: v in ("batch", "spectral")),
    "beta": NON_NEGATIVE_NUMBER,
    "lr": POSITIVE_NUMBER,
    "weight_decay": NON_NEGATIVE_NUMBER,
    "warmup_steps": NON_NEGATIVE_INT,
    "gradient_clip_val": NON_NEGATIVE_NUMBER.or_null(),
    # trainer and run
    "max_epochs": LIMIT.or_null(),
    "min_epochs": NON_NEGATIVE_INT.or_null(),
    "max_steps": LIMIT,
    "accumulate_grad_batches": POSITIVE_INT,
    "log_every_n_steps": POSITIVE_INT,
    "check_val_every_n_epoch": POSITIVE_INT.or_null(),
    "num_nodes": POSITIVE_INT,
    "seed": INTEGER.or_null(),
    "train": BOOLEAN,
    "test": BOOLEAN,
    "overwrite": BOOLEAN,
}

# Model keys that bound the length of a sequence the model takes (its context).
CONTEXT_KEYS = ("n_positions", "context_length", "max_length", "max_seq_len", "max_len")


def validate(cfg: DictConfig, run_dir: Path) -> None:
    """Raise one GenlabError listing every problem found (one per line), or return."""
    errors = config_errors(cfg, run_dir)
    if errors:
        raise GenlabError("\n".join(errors))


def config_errors(cfg: DictConfig, run_dir: Path) -> list[str]:
    errors = [
        f"{key}: no value given (??? in the config): set {key}=..."
        for key in sorted(OmegaConf.missing_keys(cfg))
    ]
    try:
        tree = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        return [*errors, f"{getattr(err, 'full_key', '?')}: cannot resolve it: {message}"]
    for key, name, value in _leaves(tree):
        rule = RULES.get(name)
        if rule is not None and value != "???" and not rule.accepts(value):
            errors.append(f"{key}={_show(value)}: must be {rule.allowed}")
    if errors:  # the checks below assume well-typed values
        return errors
    errors += trainer_errors(tree.get("trainer") or {})
    errors += block_size_errors(tree.get("model") or {}, tree.get("data") or {})
    errors += dcgan_errors(tree.get("model") or {}, tree.get("data") or {})
    errors += data_errors(tree.get("model") or {}, tree.get("data") or {})
    if is_rank_zero():  # other ranks would find rank 0's fresh run.json
        errors += run_dir_errors(cfg, run_dir)
    if cfg.get("ckpt_path"):
        # Resuming in the run's own directory: train.py compares the whole model and data
        # configs with the run's and quotes its overrides, which says more than the class.
        resuming_here = cfg.get("train") and (run_dir / "config.yaml").is_file()
        target = None if resuming_here else (tree.get("model") or {}).get("_target_")
        errors += checkpoint_errors(cfg.ckpt_path, run_dir, target)
    return errors


def _leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(dotted key, last name, value) of every non-dict value; lists count as values."""
    if not isinstance(tree, dict):
        return
    for name, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", str(name), value


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def known_precisions() -> list[str]:
    """Every `precision` value Lightning takes ("32-true", "bf16-mixed", 16, "16", ...)."""
    try:
        from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT

        return [str(v) for literal in get_args(_PRECISION_INPUT) for v in get_args(literal)]
    except ImportError:  # moved in another Lightning version: the values of 2.6
        return ["16-true", "16-mixed", "bf16-true", "bf16-mixed", "32-true", "64-true"] + [
            "64",
            "32",
            "16",
            "bf16",
        ]


def _known_accelerators() -> list[str]:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    return sorted({"auto", "gpu", "tpu", *AcceleratorRegistry.available_accelerators()})


def _device_kind(accelerator: str) -> str:
    """ "gpu", "cpu" or another accelerator's name, as `auto` would pick on this machine."""
    if accelerator == "auto":
        if torch.cuda.is_available():
            return "gpu"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    return "gpu" if accelerator == "cuda" else accelerator


def _device_request(devices: Any) -> tuple[int | None, list[int]] | None:
    """(number of devices or None for all, device ids) or None when `devices` is malformed."""
    if devices == "auto" or devices == -1 or devices == "-1":
        return None, []
    if _is_int(devices):
        return (devices, []) if devices > 0 else None
    if isinstance(devices, str):
        parts = [p.strip() for p in devices.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts) or not parts:
            return None
        if "," in devices:
            return len(parts), [int(p) for p in parts]
        return (int(parts[0]), []) if int(parts[0]) > 0 else None
    if isinstance(devices, list) and devices and all(_is_int(d) and d >= 0 for d in devices):
        return len(devices), list(devices)
    return None


def trainer_errors(trainer: dict[str, Any]) -> list[str]:
    """Precision, accelerator and devices against what Lightning and this machine offer."""
    errors = []
    precision = trainer.get("precision")
    if precision is not None and str(precision) not in known_precisions():
        errors.append(
            f"trainer.precision={precision}: Lightning does not know it; allowed: "
            f"{', '.join(p for p in known_precisions() if '-' in p)}"
        )
    accelerator = trainer.get("accelerator", "auto")
    if not isinstance(accelerator, str):
        return errors  # an accelerator object from a config: Lightning checks it
    if accelerator not in _known_accelerators():
        return [
            *errors,
            f"trainer.accelerator={accelerator}: allowed: {', '.join(_known_accelerators())}",
        ]
    kind = _device_kind(accelerator)
    if kind == "cpu" and str(precision) in ("16-mixed", "16"):
        errors.append(
            f"trainer.precision={precision} needs a CUDA GPU, and trainer.accelerator="
            f"{accelerator} runs on the CPU here; on a CPU use bf16-mixed or 32-true"
        )
    devices = trainer.get("devices", "auto")
    request = _device_request(devices)
    if request is None:
        return [
            *errors,
            f"trainer.devices={_show(devices)}: must be a positive number of devices, a list of "
            f"device ids, -1 (all) or auto",
        ]
    number, ids = request
    if kind == "gpu":
        available = torch.cuda.device_count()
        if available == 0:
            errors.append(
                f"trainer.accelerator={accelerator}: this machine has no CUDA GPU; use "
                f"accelerator=cpu or accelerator=auto"
            )
        elif (number or 0) > available or any(i >= available for i in ids):
            errors.append(
                f"trainer.devices={_show(devices)}: this machine has {available} CUDA GPU(s); "
                f"allowed: 1 to {available}, ids 0 to {available - 1}, or -1 for all"
            )
    elif kind == "cpu":
        cores = os.cpu_count() or 1
        if ids or (number is None and devices != "auto") or (number or 0) > cores:
            errors.append(
                f"trainer.devices={_show(devices)}: on the CPU, devices is a number of processes "
                f"from 1 to {cores} (this machine's cores), or auto"
            )
    return errors


def block_size_problem(block_size: int, context: int, context_key: str) -> str | None:
    """The error line when sequences of `block_size` tokens do not fit the model's context."""
    if block_size <= context:
        return None
    return (
        f"data.block_size={block_size} is larger than the model's context of {context} tokens "
        f"({context_key}): lower it or enlarge the model"
    )


def block_size_errors(model: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """A model built from the config has its context there; a pretrained one is checked by the
    datamodule once it is loaded."""
    block_size = data.get("block_size")
    if not _is_int(block_size) or model.get("pretrained"):
        return []
    for key in CONTEXT_KEYS:
        if _is_int(model.get(key)):
            problem = block_size_problem(block_size, model[key], f"model.{key}")
            return [problem] if problem else []
    return []


def dcgan_errors(model: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """DCGAN sizes its networks from the image side: a side it cannot take is a data setting,
    refused here rather than as a traceback from inside the model."""
    if model.get("_target_") != "genlab.models.dcgan.DCGAN" or "input_shape" not in model:
        return []
    problem = shape_problem(model["input_shape"])
    if problem is None:
        return []
    key = (
        f"data.image_size={data['image_size']}"
        if "image_size" in data
        else f"data.dims={_show(data.get('dims', model['input_shape']))}"
    )
    return [f"{key}: {problem}; model=dcgan cannot take these images"]


# Models whose loss is BCE on pixels: their images must be in [0, 1].
_BCE_MODELS = ("genlab.models.vae.VAE", "genlab.models.ae.Autoencoder")


def data_errors(model: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """Splits that would share images, and pixel ranges the model's loss cannot take."""
    errors = []
    val, test = data.get("val_fraction"), data.get("test_fraction")
    if isinstance(val, (int, float)) and isinstance(test, (int, float)) and val + test >= 1:
        errors.append(
            f"data.val_fraction={val} + data.test_fraction={test} leave no training images: "
            f"keep their sum below 1 (e.g. 0.1 each)"
        )
    value_range = data.get("value_range", "auto")
    bce = model.get("_target_") in _BCE_MODELS
    if bce and value_range != "auto" and list(value_range) != [0, 1]:
        errors.append(
            f"data.value_range={_show(value_range)}: {model['_target_'].rsplit('.', 1)[1]} "
            f"computes BCE on pixels, which must be in [0, 1]: use data.value_range=auto"
        )
    return errors


def run_dir_errors(cfg: DictConfig, run_dir: Path) -> list[str]:
    """A directory that holds a run that got anywhere is not reused unless the user says so."""
    record = read_record(run_dir)
    if not record or record.get("status") == "failed" or cfg.get("ckpt_path"):
        return []
    if cfg.get("overwrite"):
        return []
    return [
        f"run_dir={run_dir} already holds a {record.get('status')} run (its run.json): start a "
        f"new run elsewhere (leave run_dir unset), continue it with ckpt_path=last, or replace "
        f"it with overwrite=true"
    ]


def checkpoint_errors(ckpt_path: str, run_dir: Path, model_target: str | None) -> list[str]:
    """The checkpoint exists, loads safely, and was written by the configured model class."""
    return checked_checkpoint(ckpt_path, run_dir, model_target)[1]


def checked_checkpoint(
    ckpt_path: str, run_dir: Path, model_target: str | None
) -> tuple[dict[str, Any] | None, list[str]]:
    """(the loaded checkpoint, []) or (None, the problems of `checkpoint_errors`)."""
    try:
        path = resolve_checkpoint(ckpt_path, run_dir)
    except GenlabError as err:
        return None, [str(err)]
    try:
        checkpoint = load_checkpoint(path)
    except Exception as err:  # truncated, not a torch file, or objects that need code to load
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return None, [
            f"ckpt_path={ckpt_path}: {path} does not load as a checkpoint with "
            f"torch.load(weights_only=True) ({reason}); give a checkpoint that genlab wrote"
        ]
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        return None, [
            f"ckpt_path={ckpt_path}: {path} is not a Lightning checkpoint (no state_dict)"
        ]
    written_by = checkpoint.get("genlab_model") or _model_of_run(run_dir_of(path))
    if written_by and model_target and written_by != model_target:
        return None, [
            f"ckpt_path={ckpt_path} was written by {written_by}, but the configured model is "
            f"{model_target} (model._target_): choose the model it was trained with (its run's "
            f"run.json has the overrides), or another checkpoint"
        ]
    return checkpoint, []


def _model_of_run(run_dir: Path) -> str | None:
    config = run_dir / "config.yaml"
    if not config.is_file():
        return None
    return OmegaConf.select(OmegaConf.load(config), "model._target_")


def check_checkpoint_fits(
    model: torch.nn.Module, ckpt_path: str, checkpoint: dict[str, Any] | str | Path
) -> None:
    """Refuse, with the differing hyperparameters, a checkpoint (loaded, or its path) whose
    weights do not fit `model` (Lightning would fail later with a traceback of every mismatched
    tensor)."""
    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(Path(checkpoint))
    theirs, ours = checkpoint["state_dict"], model.state_dict()
    problem = next(
        (
            f"{name} is {list(theirs[name].shape)} there and {list(tensor.shape)} here"
            for name, tensor in ours.items()
            if name in theirs and tuple(theirs[name].shape) != tuple(tensor.shape)
        ),
        None,
    )
    missing = [name for name in ours if name not in theirs]
    if problem is None and missing:
        problem = f"it has no {missing[0]}"
    if problem is None:
        return
    saved = checkpoint.get("hyper_parameters") or {}
    current = dict(getattr(model, "hparams", {}))
    differing = [
        f"model.{key}={_show(saved[key])}"
        for key in saved
        if key in current and saved[key] != current[key]
    ]
    trained = f"; it was trained with {' '.join(differing)}" if differing else ""
    raise GenlabError(
        f"ckpt_path={ckpt_path} does not fit the configured model: {problem}{trained}"
    )
