"""Every key of every config group has a rule, and each value its rule refuses (the wrong type,
out of range, empty) is reported before anything is built, as one line naming the key.

The configs are composed once per group option and the values set on copies, then checked with
the function genlab-train calls before it builds anything (`genlab.config.checks.config_errors`):
a config error takes the same path for every key from there (one `genlab: error:` line, exit
code 2, no run directory left; tests/test_bad_input.py runs that path through the CLI).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from genlab.config.checks import config_errors
from genlab.config.rules import RULES, show
from genlab.run.resolvers import register_resolvers

CONF = Path(__file__).resolve().parents[1] / "conf"
# What each group option needs beside it to make a config that can be built.
COMPANIONS = {
    "model=gpt2": ["data=text", "data.path=corpus.txt"],
    "model=seq2seq": ["data=translation", "data.task=numbers"],
    "data=text": ["model=gpt2", "data.path=corpus.txt"],
    "data=translation": ["model=seq2seq", "data.task=numbers"],
    "data=image_folder": ["data.path=images"],
    "model=conv_vae": ["data=cifar10"],
    "accelerator=multinode": ["trainer.num_nodes=2", "trainer.devices=4"],
}
# Values of the wrong type, out of range, or empty; each key is given those its rule refuses.
CANDIDATES = ["abc", 1.5, -3, 0, [1, 2], None, ""]


def group_options() -> list[list[str]]:
    options = [[]]
    for group in ("model", "data", "trainer", "accelerator", "callbacks", "logger", "tune"):
        for path in sorted((CONF / group).glob("*.yaml")):
            option = f"{group}={path.stem}"
            options.append([option, *COMPANIONS.get(option, [])])
    return options


def leaves(node: DictConfig, prefix: str = ""):
    """(dotted key, last name) of every value stated in the config (not interpolated, not
    missing, not inside a list); `_target_`s have their own test (tests/test_safety.py)."""
    for key in node:
        full = f"{prefix}{key}"
        if OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if isinstance(value, DictConfig):
            yield from leaves(value, f"{full}.")
        elif key != "_target_":
            if isinstance(value, list) or OmegaConf.is_list(value):
                items = node[key]
                if any(OmegaConf.is_interpolation(items, i) for i in range(len(items))):
                    continue
            yield full, str(key)


@pytest.fixture(scope="module")
def composed(tmp_path_factory) -> dict[str, DictConfig]:
    """Each group option's config, every key of which passes its checks as composed."""
    register_resolvers()  # as the entry points do before Hydra composes
    GlobalHydra.instance().clear()
    configs = {}
    with initialize_config_module(config_module="genlab.conf", version_base="1.3"):
        for overrides in group_options():
            cfg = compose("train", overrides=overrides, return_hydra_config=False)
            with open_dict(cfg):  # what Hydra's runtime would fill in
                cfg.paths.output_dir = str(tmp_path_factory.mktemp("run"))
                cfg.name = "keys"
            configs[" ".join(overrides) or "defaults"] = cfg
    GlobalHydra.instance().clear()
    return configs


@pytest.fixture(autouse=True)
def eight_gpus(monkeypatch):
    """The GPU presets describe machines with GPUs: check them as if this were one."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)


def test_every_group_option_passes_its_checks(composed):
    assert {name: config_errors(cfg) for name, cfg in composed.items()} == {
        name: [] for name in composed
    }


def test_every_key_has_a_rule(composed):
    unruled = sorted(
        {f"{key} ({name})" for cfg in composed.values() for key, name in leaves(cfg)}
        - {
            f"{key} ({name})"
            for cfg in composed.values()
            for key, name in leaves(cfg)
            if name in RULES
        }
    )
    assert unruled == []


def test_every_refused_value_is_one_line_naming_its_key(composed):
    """Each key once (in the first group option that has it), with each value its rule
    refuses; the value is set on the config and then put back."""
    seen, problems, cases = set(), [], 0
    for option, cfg in composed.items():
        for key, name in leaves(cfg):
            if key in seen:
                continue
            seen.add(key)
            original = copy.deepcopy(OmegaConf.select(cfg, key))
            for value in [v for v in CANDIDATES if not RULES[name].accepts(v)]:
                OmegaConf.update(cfg, key, value, merge=False)
                errors = config_errors(cfg)
                cases += 1
                if len(errors) != 1 or not errors[0].startswith(f"{key}={show(value)}: must be"):
                    problems.append(f"[{option}] {key}={show(value)}: {errors}")
            OmegaConf.update(cfg, key, original, merge=False)
    print(f"{len(seen)} keys, {cases} refused values")
    assert len(seen) > 100 and problems == []
