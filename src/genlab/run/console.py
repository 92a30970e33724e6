"""What a run shows and logs: the config tree at the start, Lightning's lines in train.log, and
no warnings that ask nothing of the user."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from genlab.run.distributed import is_rank_zero

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


def quiet_known_warnings() -> None:
    """Silence warnings that are expected in a genlab run and ask nothing of the user."""
    # In-memory datasets are sliced a batch at a time: DataLoader workers would only add overhead.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # torchmetrics' KID keeps its features in memory: genlab's classifier features are small.
    warnings.filterwarnings("ignore", ".*will save all extracted features in buffer.*")
    # Epoch metrics are summed and reduced across ranks in GenlabModule before they are logged,
    # so Lightning's advice to add sync_dist=True (an average of equal values) does not apply.
    warnings.filterwarnings("ignore", ".*when logging on epoch level in distributed setting.*")
    # Lightning 2.6 calls an API that torch 2.14 deprecates; nothing for a user to act on.
    warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")


def forget_removed_log_files() -> None:
    """Drop log handlers whose folder is gone (a refused run's directory is removed before its
    log file was ever opened): a later line would fail to open it."""
    for name in ("", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
            if not Path(handler.baseFilename).parent.exists():
                logger.removeHandler(handler)
                handler.close()


def lightning_logs_to_run_log() -> None:
    """Lightning, imported before Hydra configures logging, gives its loggers a console handler
    of their own and cuts them off from the root logger, so its lines (devices, why fit stopped)
    would miss the run's train.log. Hand them the root logger's files too (console unchanged)."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        if logger.propagate:
            continue  # the root logger's handlers see its lines already
        for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
            logger.removeHandler(handler)  # an earlier in-process run's log file
        for handler in files:
            logger.addHandler(handler)
