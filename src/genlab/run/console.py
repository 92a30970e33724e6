"""What a run shows and logs: the config tree at the start, Lightning's lines in train.log, and
no warnings that ask nothing of the user."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from genlab.config.classes import class_info
from genlab.run.distributed import is_rank_zero

_TREE_ORDER = ("data", "model", "trainer", "callbacks", "logger", "paths")
# Not callbacks: a list of options (+callbacks=early_stopping adds one), of which Hydra's record
# of choices keeps only the last; the overrides line shows it.
_SHOWN_GROUPS = (
    "experiment",
    "model",
    "data",
    "trainer",
    "accelerator",
    "logger",
    "debug",
    "tune",
    "hparams_search",
)
# Lightning's lines that ask nothing of the user: an advert, a notice about our own callback.
_LIGHTNING_NOISE = ("💡 Tip:", "Trainer already configured with model summary callbacks")


def print_config(cfg: DictConfig, how: str, run_dir: Path) -> None:
    """What runs (rank 0): `summary` the config groups chosen, the command line's overrides and
    the run directory; `full` the whole composed config as a tree; `none` nothing."""
    if not is_rank_zero() or how == "none":
        return
    if how == "full":
        _print_tree(cfg)
        return
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra is not None:
        choices = hydra.runtime.choices
        chosen = [f"{group}={choices[group]}" for group in _SHOWN_GROUPS if choices.get(group)]
        print("genlab-train " + " ".join(chosen))
        if hydra.overrides.task:
            print("overrides: " + " ".join(hydra.overrides.task))
    print(f"run: {run_dir}   (print_config=full shows the whole config)")


def _print_tree(cfg: DictConfig) -> None:
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


def headline_metric(cfg: DictConfig, metrics: dict[str, float]) -> str | None:
    """Which of `metrics` to show for a run: the sweep's `optimized_metric`, else the one the
    model's class names (GenlabModule.headline_metric) on test, else on validation."""
    info = class_info(str(OmegaConf.select(cfg, "model._target_", default="")))
    name = (info.attributes if info else {}).get("headline_metric", "loss")
    wanted = [cfg.get("optimized_metric"), f"test/{name}", f"val/{name}", "test/loss", "val/loss"]
    return next((key for key in wanted if key and key in metrics), None)


def print_results(run_dir: Path, metrics: dict[str, float], headline: str | None) -> None:
    """The last line of a run: where its results are, and its headline metric."""
    if not is_rank_zero():
        return
    shown = f"   {headline} {metrics[headline]:.6g}" if headline else ""
    print(f"results: {run_dir}{shown}", flush=True)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_LIGHTNING_NOISE)


def quiet_lightning(level: int = logging.INFO) -> None:
    """Drop Lightning's advert and notices; `level=logging.WARNING` (a sweep's jobs) keeps only
    its warnings."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(level)
    if logging.getLogger("lightning.pytorch").propagate:
        # Imported after the run's logging was set up, Lightning's lines reach its console
        # and file through the root logger: the console of Lightning's own would repeat them.
        package = logging.getLogger("lightning")
        for handler in [h for h in package.handlers if not isinstance(h, logging.FileHandler)]:
            package.removeHandler(handler)
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropNoise) for f in rank_zero.filters):
        rank_zero.addFilter(_DropNoise())


def quiet_known_warnings() -> None:
    """Silence warnings (and libraries' lines) that are expected in a genlab run and ask
    nothing of the user."""
    # The Optuna sweeper imports alembic, which announces each of its plugins.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # In-memory datasets are sliced a batch at a time: DataLoader workers would only add overhead.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # torchmetrics' KID keeps its features in memory: genlab's classifier features are small.
    warnings.filterwarnings("ignore", ".*will save all extracted features in buffer.*")
    # Epoch metrics are summed and reduced across ranks in GenlabModule before they are logged,
    # so Lightning's advice to add sync_dist=True (an average of equal values) does not apply.
    warnings.filterwarnings("ignore", ".*when logging on epoch level in distributed setting.*")
    # Lightning 2.6 calls an API that torch 2.14 deprecates; nothing for a user to act on.
    warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
    # A run continued in its directory finds its checkpoints there, as it should.
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")


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
