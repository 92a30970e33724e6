"""Checking a composed config before anything is built: one line per problem, each naming the
key, its value and what is allowed.

First every value against the rule of its name (`genlab.config.rules`); then, on well-typed
values, the trainer against this machine (`genlab.config.machine`), the data's pixel range
against the model's, and what the configured model and datamodule classes say of their own
config (their `config_problems`). The run directory and the checkpoint to load are checked by
`genlab.run`, which knows them.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genlab.config.machine import trainer_errors
from genlab.config.rules import rule_errors
from genlab.data.splits import SplitDataModule
from genlab.models.base import GenlabModule


def config_errors(cfg: DictConfig) -> list[str]:
    """Every problem of `cfg`, one line each; empty when it can be built."""
    errors = [
        f"{key}: no value given (??? in the config): set {key}=..."
        for key in sorted(OmegaConf.missing_keys(cfg))
    ]
    try:
        tree = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        return [*errors, f"{getattr(err, 'full_key', '?')}: cannot resolve it: {message}"]
    errors += rule_errors(tree, skip=_interpolated(cfg))
    if errors:  # the checks below assume well-typed values
        return errors
    errors += trainer_errors(tree.get("trainer") or {})
    errors += pixel_range_errors(tree.get("model") or {}, tree.get("data") or {})
    for group, base in (("model", GenlabModule), ("data", SplitDataModule)):
        target = (tree.get(group) or {}).get("_target_")
        cls = _class(target)
        if isinstance(cls, type) and issubclass(cls, base):
            errors += cls.config_problems(tree)
    return errors


def _interpolated(node: Any, prefix: str = "") -> set[str]:
    """Dotted keys whose value is an interpolation (`input_shape: ${data.dims}`): checked where
    the value is stated, so one mistake is reported once."""
    if not isinstance(node, DictConfig):
        return set()
    found = set()
    for key in node:
        if OmegaConf.is_interpolation(node, key):
            found.add(f"{prefix}{key}")
        elif not OmegaConf.is_missing(node, key):
            found |= _interpolated(node[key], f"{prefix}{key}.")
    return found


def _class(target: Any) -> Any:
    """The class a `_target_` names, or None when it names none (Hydra reports that when it
    instantiates it, with its own message)."""
    if not isinstance(target, str):
        return None
    try:
        return hydra.utils.get_class(target)
    except Exception:  # Hydra raises ImportError, ValueError or its own errors
        return None


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
