"""The schema of the keys every model and datamodule shares, by the key's last name.

A rule applies wherever its name appears (`data.batch_size`, `model.optimizer.lr`,
`model.generator_optimizer.lr`, ...), so a model or datamodule that lands later is checked as
soon as it uses the common names.
"""

from __future__ import annotations

import math
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


INTEGER = Rule("an integer", is_int)
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
