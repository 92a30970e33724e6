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
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genlab.config.machine import trainer_errors
from genlab.config.rules import leaves, rule_errors
from genlab.config.targets import target_errors
from genlab.data.splits import SplitDataModule
from genlab.models.base import GenlabModule

# The data options that give each kind of data a model trains on (GenlabModule.data_kind).
_DATA_OPTIONS = {
    "images": "data=digits, mnist, fashion_mnist or image_folder",
    "token blocks": "data=text",
    "sentence pairs": "data=translation",
}


def config_errors(cfg: DictConfig) -> list[str]:
    """Every problem of `cfg`, one line each; empty when it can be built."""
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


def _data_kind_error(cfg: DictConfig) -> str | None:
    """A model given data of another kind (GPT-2 on images, a VAE on text)."""
    model = _class(OmegaConf.select(cfg, "model._target_", throw_on_missing=False))
    data = _class(OmegaConf.select(cfg, "data._target_", throw_on_missing=False))
    if not (isinstance(model, type) and issubclass(model, GenlabModule)):
        return None
    if not (isinstance(data, type) and issubclass(data, SplitDataModule)):
        return None
    if model.data_kind == data.data_kind:
        return None
    return (
        f"{model.__name__} (model) trains on {model.data_kind}, and {data.__name__} (data) gives "
        f"{data.data_kind}: choose {_DATA_OPTIONS.get(model.data_kind, 'other data')}"
    )


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
