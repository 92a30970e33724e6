"""Weights & Biases: the config, tags, images, text samples as tables, final metrics in the run's
summary. Offline unless an API key is set: the run is written under the run
directory's `wandb/`, and `wandb sync <that folder>` uploads it later."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.loggers import WandbLogger

from genlab.loggers.base import LoggerAdapter, TrackedRun

_HOST = "api.wandb.ai"


def has_api_key() -> bool:
    """An API key from the environment or from `wandb login` (~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(_HOST) is not None
    except (OSError, netrc.NetrcParseError):
        return False


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
        if node.get("offline") == "auto":
            online = has_api_key() or os.environ.get("WANDB_MODE") == "online"
            found["offline"] = not online
        earlier = run.earlier.get(cls.key, {}).get("id")
        if earlier and not node.get("id"):
            found["id"] = earlier
        return found

    def start(self, config: dict[str, Any], run: TrackedRun) -> dict[str, Any]:
        # Lightning passes W&B an `anonymous` setting that W&B no longer has, and warns of.
        if self.logger._wandb_init.get("anonymous") is None:
            self.logger._wandb_init.pop("anonymous", None)
        experiment = self.logger.experiment
        experiment.config.update(config, allow_val_change=True)
        return {"id": experiment.id, "offline": bool(self.logger._offline), "dir": experiment.dir}

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
        if self.logger._experiment is not None:
            self.logger.experiment.finish(exit_code=0 if status == "completed" else 1)
