"""genlab-train: compose conf/train.yaml with the command line's overrides, then run the job.

genlab-train model=ae trainer.max_epochs=5      (also: python -m genlab)
genlab-train -m model=ae,vae seed=1,2           (a sweep)
"""

from __future__ import annotations

import functools
import sys

import hydra

from genlab.config.compose import CONFIG_PATH, with_trainer_keys_added_or_set
from genlab.errors import GenlabError, user_errors_exit
from genlab.run.job import CONFIG_NAME, job, prepare

_hydra_main = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)(job)


def main() -> None:
    prepare()
    sys.argv[1:] = with_trainer_keys_added_or_set(sys.argv[1:])
    with user_errors_exit():
        _check_plain_overrides(sys.argv[1:])
    _hydra_main()


def _check_plain_overrides(argv: list[str]) -> None:
    """Misspelt keys given without `+` (`model.latnet_dim=4`): Hydra would stop at the first
    ("not in struct", with advice to add it with +); name each, and the key meant instead.
    Composed here only when such keys are on the command line of a single run."""
    from hydra._internal.utils import get_args_parser

    args, _ = get_args_parser().parse_known_args(argv)
    flags = (args.help, args.hydra_help, args.cfg, args.info, args.multirun, args.config_dir)
    plain = [o for o in args.overrides if o.split("=")[0].startswith(_CHECKED_GROUPS)]
    if any(flags) or args.config_path or args.config_name or not plain:
        return
    if all(_known_name(o.split("=")[0]) for o in plain):
        return  # no misspelling to find: spare the composing
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(CONFIG_PATH.removeprefix("pkg://"), version_base="1.3"):
            try:
                compose(CONFIG_NAME, overrides=args.overrides)
                return
            except ConfigCompositionException as err:
                if "not in struct" not in str(err.__cause__):
                    return  # Hydra reports it, with its own message
            base = compose(CONFIG_NAME, overrides=[o for o in args.overrides if o not in plain])
    except ConfigCompositionException:
        return
    finally:
        GlobalHydra.instance().clear()
    problems = [_unknown_key(base, o.split("=")[0]) for o in plain]
    problems = [p for p in problems if p]
    if problems:
        raise GenlabError("\n".join(problems))


_CHECKED_GROUPS = ("model.", "data.", "trainer.")


def _known_name(key: str) -> bool:
    """Whether a dotted key's name is one genlab knows for its place: an argument of a class
    that group's configs build (`model.latent_dim`), or a key with a rule (`model.optimizer.lr`)."""
    from genlab.config.rules import RULES

    group, *rest = key.split(".")
    return rest[-1] in RULES or (len(rest) == 1 and rest[0] in _group_arguments(group))


@functools.lru_cache(maxsize=8)
def _group_arguments(group: str) -> frozenset[str]:
    """The arguments of every class the options of a config group build (read from their
    source, not imported), and the model configs' evaluation keys."""
    from importlib import resources

    import yaml

    from genlab.config.classes import class_info
    from genlab.config.compose import MODEL_RUN_KEYS

    targets = {"lightning.pytorch.Trainer"} if group == "trainer" else set()
    folder = resources.files("genlab.conf") / group
    for entry in folder.iterdir() if folder.is_dir() else []:
        if entry.name.endswith(".yaml"):
            targets.add((yaml.safe_load(entry.read_text()) or {}).get("_target_"))
    names = set(MODEL_RUN_KEYS) if group == "model" else set()
    for target in targets:
        info = class_info(target) if isinstance(target, str) else None
        names |= set(info.parameters or ()) if info else set()
    return frozenset(names)


def _unknown_key(cfg, key: str) -> str | None:
    """The error line for a dotted key that is not in `cfg`, with the closest key there."""
    import difflib

    from omegaconf import OmegaConf

    from genlab.config.checks import unknown_key_errors

    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent)
    if node is None or name in node:
        return None
    if "." not in parent:  # an argument of the group's class
        found = unknown_key_errors({parent: {"_target_": node.get("_target_"), name: None}})
        if found:
            return found[0]
    close = difflib.get_close_matches(name, [str(k) for k in node], n=1)
    hint = f"did you mean {parent}.{close[0]}?" if close else f"{parent} has no key {name}"
    return f"{key}: no such key; {hint}"


if __name__ == "__main__":
    main()
