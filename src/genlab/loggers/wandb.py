"""Weights & Biases: the config, tags, images, text samples as tables, final metrics in the run's
summary. Offline unless an API key is set: the run is written under the run
directory's `wandb/`, and `wandb sync <that folder>` uploads it later."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from lightning.pytorch.loggers import WandbLogger

from genlab.loggers.base import LoggerAdapter, TrackedRun


def has_api_key() -> bool:
    """An API key from the environment or from `wandb login` (the netrc file, for the host of
    WANDB_BASE_URL)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def runs_offline(node: dict[str, Any]) -> bool:
    """offline=auto: online with an API key or WANDB_MODE=online, unless WANDB_MODE says
    offline."""
    if node.get("offline") != "auto":
        return bool(node.get("offline"))
    mode = os.environ.get("WANDB_MODE")
    if mode in ("offline", "dryrun"):
        return True
    return not (has_api_key() or mode == "online")


class WandbAdapter(LoggerAdapter):
    logger_class = WandbLogger
    key = "wandb"
    logger: WandbLogger

    @classmethod
    def settings(cls, node: dict[str, Any], run: TrackedRun) -> dict[str, Any]:
        """Named and grouped like the run (a sweep: one group), its tags; offline=auto: online
        only with an API key (or WANDB_MODE=online); a resumed run continues its W&B run."""
        import wandb

        found: dict[str, Any] = {
            "name": run.name,
            "group": node.get("group") or run.group,
            "tags": list(run.tags),
            # W&B's console lines: where the run is and how to sync it, not a table of metrics.
            "settings": wandb.Settings(quiet=True),
        }
        found["offline"] = runs_offline(node)
        if not found["offline"]:
            found["mode"] = "online"  # over a WANDB_MODE=dryrun left by an offline run
        earlier = run.earlier.get(cls.key, {}).get("id")
        if earlier and not node.get("id"):
            found["id"] = earlier
        return found

    @classmethod
    def problem(cls, node: dict[str, Any]) -> str | None:
        if node.get("log_model") and runs_offline(node):
            return (
                f"logger.wandb.log_model={node['log_model']} uploads checkpoints, which an "
                "offline run cannot: set an API key (WANDB_API_KEY or wandb login) or "
                "logger.wandb.log_model=false"
            )
        return None

    def start(self, config: dict[str, Any], run: TrackedRun) -> dict[str, Any]:
        # Lightning passes W&B an `anonymous` setting that W&B no longer has, and warns of.
        if self.logger._wandb_init.get("anonymous") is None:
            self.logger._wandb_init.pop("anonymous", None)
        experiment = self.logger.experiment
        experiment.config.update(config, allow_val_change=True)
        return {"id": experiment.id, "offline": experiment.offline, "dir": experiment.dir}

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.logger.log_image(key=tag, images=[image], step=step)

    def log_texts(self, tag: str, rows: list[tuple[str, str]], step: int) -> None:
        data = [[prompt, text] for prompt, text in rows]
        self.logger.log_table(key=tag, columns=["prompt", "continuation"], data=data, step=step)

    def finish(self, metrics: dict[str, float], params: dict[str, Any], files: list[Path]) -> None:
        """The final metrics as the run's summary (the files stay in the run directory: W&B
        keeps a config.yaml of its own among the run's files)."""
        self.logger.experiment.summary.update(metrics)

    def close(self, status: str) -> None:
        if self.logger._experiment is None:  # no W&B run was made (it failed before)
            return
        offline = self.logger.experiment.offline
        self.logger.experiment.finish(exit_code=0 if status == "completed" else 1)
        # Lightning switches W&B offline for the whole process: not for the next run.
        if offline and os.environ.get("WANDB_MODE") == "dryrun":
            del os.environ["WANDB_MODE"]
