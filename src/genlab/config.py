"""Where the Hydra configs live, and showing / saving / instantiating a composed config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from genlab.distributed import is_rank_zero

# `conf/` at the repository root is installed as the package `genlab.conf` (see pyproject.toml),
# so the configs are found from any working directory, editable install or not.
CONFIG_PATH = "pkg://genlab.conf"

_TREE_ORDER = ("data", "model", "trainer", "callbacks", "logger", "paths")


def print_config_tree(cfg: DictConfig) -> None:
    """Print the composed config as a tree, the main groups first (rank 0 only)."""
    if not is_rank_zero():
        return
    from rich import print as rich_print
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    keys = [k for k in _TREE_ORDER if k in cfg] + [k for k in cfg if k not in _TREE_ORDER]
    for key in keys:
        value = cfg[key]
        text = (
            OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        )
        tree.add(f"[bold]{key}[/bold]").add(Syntax(text.rstrip(), "yaml", theme="ansi_dark"))
    rich_print(tree)


def save_resolved_config(cfg: DictConfig, run_dir: Path) -> None:
    """Write `config.yaml` with every interpolation resolved: what this run really used."""
    if not is_rank_zero():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a group such as `callbacks` or `logger`; null entries are off."""
    if not group:
        return []
    return [hydra.utils.instantiate(node) for node in group.values() if node is not None]
