"""Config files are data, not code: a `_target_` names a class genlab builds, so only genlab's own
classes and those of an allow-list of libraries are accepted. A config from a shared run
directory could otherwise name any function (`builtins.open`, `os.system`) with arguments of its
choosing, and genlab-eval would call it."""

from __future__ import annotations

import os
from typing import Any

from genlab.config.classes import class_info

# Class paths genlab builds from configs (prefixes end in "." and match a whole package).
ALLOWED_TARGETS = (
    "genlab.",
    "torch.optim.",
    "torch.distributed.fsdp.wrap.",
    "lightning.pytorch.Trainer",
    "lightning.pytorch.callbacks.",
    "lightning.pytorch.loggers.",
    "lightning.pytorch.strategies.",
    "lightning.pytorch.plugins.",
    "lightning.pytorch.profilers.",
)
# Hydra's class lookup (a function) is allowed to find classes in these packages: the FSDP preset
# names the transformer blocks to shard this way.
CLASS_LOOKUP = "hydra.utils.get_class"
LOOKUP_TARGETS = (*ALLOWED_TARGETS, "transformers.models.")
# Your own packages, comma-separated prefixes: GENLAB_ALLOWED_TARGETS=mylab.,otherlab.models.
EXTRA_TARGETS_VARIABLE = "GENLAB_ALLOWED_TARGETS"


def _allowed(path: str, prefixes: tuple[str, ...]) -> bool:
    extra = tuple(p.strip() for p in os.environ.get(EXTRA_TARGETS_VARIABLE, "").split(",") if p)
    return any(
        path == prefix or (prefix.endswith(".") and path.startswith(prefix))
        for prefix in (*prefixes, *extra)
    )


def target_errors(tree: Any, prefix: str = "") -> list[str]:
    """One line per `_target_` anywhere in `tree` (dicts and lists) that genlab may not build."""
    errors = []
    if isinstance(tree, dict):
        target = tree.get("_target_")
        if target is not None:
            errors += _target_problem(tree, f"{prefix}_target_", target)
        for key, value in tree.items():
            errors += target_errors(value, f"{prefix}{key}.")
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            errors += target_errors(value, f"{prefix}{index}.")
    return errors


def _target_problem(node: dict[str, Any], key: str, target: Any) -> list[str]:
    allowed_here = (
        "genlab's classes and those of torch.optim and Lightning (callbacks, loggers, "
        f"strategies, plugins, profilers); allow your own with {EXTRA_TARGETS_VARIABLE}=<package>."
    )
    if target == CLASS_LOOKUP:
        looked_up = node.get("path")
        if isinstance(looked_up, str) and _allowed(looked_up, LOOKUP_TARGETS):
            return []
        return [
            f"{key.removesuffix('_target_')}path={looked_up}: not a class genlab may load; "
            f"allowed: {allowed_here}"
        ]
    if not isinstance(target, str) or not _allowed(target, ALLOWED_TARGETS):
        return [f"{key}={target}: genlab builds only {allowed_here}"]
    if target.startswith("genlab.") and class_info(target) is None:
        return [f"{key}={target}: not a class of genlab"]
    return []
