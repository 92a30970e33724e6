"""The schema of the keys every model and datamodule shares, by the key's last name.

A rule applies wherever its name appears (`data.batch_size`, `model.optimizer.lr`,
`model.generator_optimizer.lr`, ...), so a model or datamodule that lands later is checked as
soon as it uses the common names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


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


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def one_of(*choices: str) -> Rule:
    words = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
    return Rule(words, lambda v: v in choices)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_duration(value: str) -> bool:
    """Lightning's "DD:HH:MM:SS"."""
    parts = value.split(":")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def parse_devices(devices: Any) -> tuple[int | None, list[int]] | None:
    """`trainer.devices` as (number of devices, or None for all; device ids), or None when it is
    malformed: a count (2, "2"), ids ([0, 1], "0,1"), or all (-1, "-1", "auto")."""
    if devices in ("auto", -1, "-1"):
        return None, []
    if is_int(devices):
        return (devices, []) if devices > 0 else None
    if isinstance(devices, str):
        parts = [p.strip() for p in devices.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts) or not parts:
            return None
        if "," in devices:
            return len(parts), [int(p) for p in parts]
        return (int(parts[0]), []) if int(parts[0]) > 0 else None
    if (
        isinstance(devices, (list, tuple))
        and devices
        and all(is_int(d) and d >= 0 for d in devices)
    ):
        return len(devices), list(devices)
    return None


INTEGER = Rule("an integer", is_int)
SEED = Rule("an integer from 0 to 4294967295", lambda v: is_int(v) and 0 <= v <= 2**32 - 1)
TEXT = Rule("a non-empty text (quote one that looks like a number: key='2024')", _is_text)
# A node that is either off (null) or a config of its own (a dict, whose keys are checked).
OFF_OR_CONFIG = Rule("null, or a config with a _target_", lambda v: False, nullable=True)
POSITIVE_INT = Rule("a positive integer", lambda v: is_int(v) and v > 0)
NON_NEGATIVE_INT = Rule("an integer >= 0", lambda v: is_int(v) and v >= 0)
POSITIVE_NUMBER = Rule("a positive number", lambda v: _is_number(v) and v > 0)
NON_NEGATIVE_NUMBER = Rule("a number >= 0", lambda v: _is_number(v) and v >= 0)
FRACTION = Rule("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1)
OPEN_FRACTION = Rule("a number in (0, 1)", lambda v: _is_number(v) and 0 < v < 1)
LIMIT = Rule("a positive integer, or -1 for no limit", lambda v: is_int(v) and (v > 0 or v == -1))
SIZES = Rule(
    "a list of positive integers",
    lambda v: isinstance(v, list) and all(is_int(x) and x > 0 for x in v),
)
PIXEL_RANGE = Rule(
    "a pair [low, high] with low < high",
    lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_number, v)) and v[0] < v[1],
)
BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool))
# model.compile's modes besides true (torch.compile's default).
COMPILE_MODES = ("reduce-overhead", "max-autotune")
AUTO_OR_BOOLEAN = Rule("auto, true or false", lambda v: isinstance(v, bool) or v == "auto")
UNIT_NUMBER = Rule("a number in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1)
NUMBER_PAIR = Rule(
    "a pair of numbers in [0, 1), e.g. [0.9, 0.999]",
    lambda v: isinstance(v, list) and len(v) == 2 and all(_is_number(x) and 0 <= x < 1 for x in v),
)
# Whitespace counts (prompts: nanoGPT starts its samples from "\n").
TEXTS = Rule(
    "a list of non-empty texts",
    lambda v: isinstance(v, list) and all(isinstance(x, str) and x != "" for x in v),
)
BATCH_LIMIT = Rule(
    "a number of batches (an integer >= 0) or a fraction of them in [0, 1]",
    lambda v: (is_int(v) and v >= 0) or (_is_number(v) and 0 <= v <= 1),
)
# What MLflow and W&B both take as a tag.
_TAG = re.compile(r"[A-Za-z0-9_.\-/ ]{1,64}")
TAGS = Rule(
    "a list of tags of letters, digits, _ . - / and spaces, at most 64 characters each, "
    "e.g. tags=[baseline,fashion]",
    lambda v: isinstance(v, list) and all(isinstance(t, str) and _TAG.fullmatch(t) for t in v),
)

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
    "on_bad_image": one_of("fail", "skip"),
    "num_examples": POSITIVE_INT,
    "max_number": NON_NEGATIVE_INT,
    "max_length": POSITIVE_INT,
    "source_level": one_of("word", "char"),
    "target_level": one_of("word", "char"),
    "value_range": PIXEL_RANGE,
    "path": TEXT.or_null(),
    "data_dir": TEXT,
    "cache_dir": TEXT,
    "download": BOOLEAN,
    "dataset": TEXT.or_null(),
    "dataset_config": TEXT.or_null(),
    "url": TEXT.or_null(),
    "tokenizer": TEXT.or_null(),
    "sampling": one_of("blocks", "random_windows"),
    "task": TEXT.or_null(),
    # Image data: batch augmentations (genlab.data.augment.AUGMENTATIONS), cached decoding.
    "augment": Rule(
        "a list of augmentations from: hflip (e.g. data.augment=[hflip]), or [] for none",
        lambda v: isinstance(v, list) and all(x in ("hflip",) for x in v),
    ),
    "cache": BOOLEAN,
    "on_device": AUTO_OR_BOOLEAN,
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
    "discriminator_norm": one_of("batch", "spectral"),
    "ema_decay": OPEN_FRACTION.or_null(),
    "features": one_of("classifier", "inception", "none").or_null(),
    "classifier_epochs": POSITIVE_INT,
    "val_every_n_epochs": NON_NEGATIVE_INT,
    "val_samples": Rule("an integer >= 2", lambda v: is_int(v) and v >= 2),
    "beta": NON_NEGATIVE_NUMBER,
    "lr": POSITIVE_NUMBER,
    "weight_decay": NON_NEGATIVE_NUMBER,
    "warmup_steps": NON_NEGATIVE_INT,
    "gradient_clip_val": NON_NEGATIVE_NUMBER.or_null(),
    "betas": NUMBER_PAIR,
    "min_lr_ratio": UNIT_NUMBER,
    "kl_warmup_epochs": NON_NEGATIVE_NUMBER,
    "loss": one_of("bce", "mse"),
    "generator_width": POSITIVE_INT,
    "discriminator_width": POSITIVE_INT,
    "feature_dim": POSITIVE_INT,
    "num_classes": POSITIVE_INT,
    "pretrained": TEXT.or_null(),
    "trust_remote_code": BOOLEAN,
    "gradient_checkpointing": BOOLEAN,
    "activation": Rule(
        "an activation name of transformers (gelu, gelu_new, relu, silu, ...)", _is_text
    ),
    "bias": BOOLEAN,
    "sample_prompts": TEXTS,
    "sample_max_new_tokens": POSITIVE_INT,
    "scheduler": OFF_OR_CONFIG,
    # ExponentialLR / StepLR: the factor the learning rate is multiplied by at each step.
    "gamma": POSITIVE_NUMBER,
    "_partial_": BOOLEAN,
    # callbacks and loggers
    "dirpath": TEXT,
    "filename": TEXT,
    "monitor": TEXT.or_null(),
    "mode": one_of("min", "max"),
    "save_top_k": Rule("an integer >= -1 (-1: keep all)", lambda v: is_int(v) and v >= -1),
    "save_last": Rule("true, false or link", lambda v: isinstance(v, bool) or v == "link"),
    "auto_insert_metric_name": BOOLEAN,
    "patience": NON_NEGATIVE_INT,
    "min_delta": NON_NEGATIVE_NUMBER,
    "logging_interval": one_of("step", "epoch").or_null(),
    "refresh_rate": NON_NEGATIVE_INT,
    "max_depth": Rule("an integer >= -1 (-1: all)", lambda v: is_int(v) and v >= -1),
    "num_images": POSITIVE_INT,
    "num_samples": POSITIVE_INT,
    "index": NON_NEGATIVE_INT,
    "lr_monitor": OFF_OR_CONFIG,
    "save_dir": TEXT,
    "version": Rule(
        "a text or an integer >= 0", lambda v: isinstance(v, str) or (is_int(v) and v >= 0)
    ),
    "default_hp_metric": BOOLEAN,
    "logger": OFF_OR_CONFIG,
    "tracking_uri": Rule(
        "a tracking address: sqlite:///<file>, http(s)://host:port, databricks, ...", _is_text
    ),
    "experiment_name": TEXT.or_null(),
    "artifact_location": TEXT.or_null(),
    "log_model": Rule("true, false or all", lambda v: isinstance(v, bool) or v == "all"),
    "synchronous": BOOLEAN,
    "project": TEXT,
    "group": TEXT.or_null(),
    "offline": AUTO_OR_BOOLEAN,
    # trainer and run
    "max_epochs": LIMIT.or_null(),
    "min_epochs": NON_NEGATIVE_INT.or_null(),
    "max_steps": LIMIT,
    "max_time": Rule(
        'a duration "DD:HH:MM:SS" (00:12:00:00 is 12 hours)',
        lambda v: isinstance(v, str) and _is_duration(v),
    ).or_null(),
    "num_sanity_val_steps": Rule(
        "an integer >= -1 (-1: the whole validation set)", lambda v: is_int(v) and v >= -1
    ),
    "benchmark": BOOLEAN.or_null(),
    "detect_anomaly": BOOLEAN,
    "profiler": Rule(
        "simple, advanced, pytorch or a profiler config", lambda v: isinstance(v, (str, dict))
    ).or_null(),
    "enable_progress_bar": BOOLEAN,
    "accumulate_grad_batches": POSITIVE_INT,
    "log_every_n_steps": POSITIVE_INT,
    "check_val_every_n_epoch": POSITIVE_INT.or_null(),
    "val_check_interval": Rule(
        "a number of training batches (a positive integer) or a fraction of an epoch in (0, 1]",
        lambda v: (is_int(v) and v > 0) or (_is_number(v) and 0 < v <= 1),
    ),
    "limit_train_batches": BATCH_LIMIT,
    "limit_val_batches": BATCH_LIMIT,
    "limit_test_batches": BATCH_LIMIT,
    "num_nodes": POSITIVE_INT,
    "accelerator": Rule("an accelerator name: auto, cpu, gpu, ...", _is_text),
    "strategy": Rule("a strategy name (auto, ddp, fsdp, ...) or a strategy config", _is_text),
    "devices": Rule(
        "a positive number of devices, a list of device ids, -1 (all) or auto",
        lambda v: parse_devices(v) is not None,
    ),
    "precision": Rule(
        "a precision such as 32-true, bf16-mixed or 16-mixed",
        lambda v: _is_text(v) or (is_int(v) and v in (16, 32, 64)),
    ),
    "deterministic": Rule("true, false or warn", lambda v: isinstance(v, bool) or v == "warn"),
    "fast_dev_run": Rule(
        "true, false or a positive number of batches",
        lambda v: isinstance(v, bool) or (is_int(v) and v > 0),
    ),
    "overfit_batches": Rule(
        "a fraction of the batches in [0, 1) or a number of batches",
        lambda v: (is_int(v) and v >= 0) or (_is_number(v) and 0 <= v < 1),
    ),
    "default_root_dir": TEXT,
    "sharding_strategy": one_of("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD"),
    "state_dict_type": one_of("full", "sharded"),
    "module_classes": Rule(
        "a list of classes ({_target_: hydra.utils.get_class, path: ...})",
        lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    ),
    "log_dir": TEXT,
    "output_dir": TEXT,
    "name": TEXT,
    "tags": TAGS,
    "seed": SEED.or_null(),
    "tf32": BOOLEAN,
    "print_config": one_of("summary", "full", "none"),
    "threads": Rule("auto or a positive integer", lambda v: v == "auto" or (is_int(v) and v > 0)),
    "ckpt_path": TEXT.or_null(),
    "resume": one_of("auto").or_null(),
    "divergence_check_every": POSITIVE_INT,
    "fused": BOOLEAN.or_null(),
    "compile": Rule(
        "true, false, reduce-overhead or max-autotune (torch.compile's modes)",
        lambda v: isinstance(v, bool) or v in COMPILE_MODES,
    ),
    "peak_flops": POSITIVE_NUMBER.or_null(),
    "run_dir": TEXT.or_null(),
    "optimized_metric": TEXT.or_null(),
    "train": BOOLEAN,
    "test": BOOLEAN,
    "overwrite": BOOLEAN,
    # tune=lr_find and tune=batch_size (conf/tune/; tune.mode is checked by its finder,
    # genlab.config.checks.tune_errors)
    "finder": one_of("lr_find", "batch_size"),
    "min_lr": POSITIVE_NUMBER,
    "max_lr": POSITIVE_NUMBER,
    "num_training": Rule(
        "an integer >= 13 (the suggestion skips the first 10 rates and the last)",
        lambda v: is_int(v) and v >= 13,
    ),
    "early_stop_threshold": Rule("a number > 1", lambda v: _is_number(v) and v > 1).or_null(),
    "init_val": POSITIVE_INT,
    "max_trials": POSITIVE_INT,
    "steps_per_trial": POSITIVE_INT,
    "apply": BOOLEAN,
}


def show(value: Any) -> str:
    """A value as the user would type it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(dotted key, last name, value) of every non-dict value; lists count as values."""
    if not isinstance(tree, dict):
        return
    for name, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", str(name), value


def rule_errors(tree: dict[str, Any], skip: set[str] = frozenset()) -> list[str]:
    """One line per value that breaks the rule of its key's name (keys in `skip` aside)."""
    return [
        f"{key}={show(value)}: must be {rule.allowed}"
        for key, name, value in leaves(tree)
        if key not in skip
        and (rule := RULES.get(name)) is not None
        and value != "???"
        and not rule.accepts(value)
    ]
