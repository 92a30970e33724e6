"""TensorBoard: images and text at the step of the scalars, the HPARAMS tab at the end."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger

from genlab.loggers.base import LoggerAdapter, TrackedRun


class TensorBoardAdapter(LoggerAdapter):
    logger_class = TensorBoardLogger
    key = "tensorboard"

    @classmethod
    def settings(cls, node: dict[str, Any], run: TrackedRun) -> dict[str, Any]:
        """Events go to `tensorboard/<version>/`: a sweep's job is named by its overrides (the
        name TensorBoard shows for it), a continued run keeps its folder, a single run uses
        tensorboard/ itself."""
        version = run.earlier.get(cls.key, {}).get("version") or (run.name if run.in_sweep else "")
        return {"version": version} if version else {}

    def start(self, config: dict[str, Any], run: TrackedRun) -> dict[str, Any]:
        return {"version": str(self.logger.version)}

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.logger.experiment.add_image(tag, image, step, dataformats="HWC")

    def log_texts(self, tag: str, rows: list[tuple[str, str]], step: int) -> None:
        for i, (prompt, text) in enumerate(rows):
            self.logger.experiment.add_text(f"{tag}/{i}", f"**{prompt}**{text}", step)

    def finish(self, metrics: dict[str, float], params: dict[str, Any], files: list[Path]) -> None:
        """The HPARAMS tab: `params` against the final train/val/test metrics.

        The summary is written directly (not via `log_hyperparams`) so the metric curves get no
        duplicate point at step 0; the tab reads each metric's last logged scalar.
        """
        from torch.utils.tensorboard.summary import hparams

        shown = {
            k: v
            for k, v in metrics.items()
            if k.startswith(("train/", "val/", "test/"))
            and math.isfinite(v)
            and not k.endswith("_best")
        }
        writer = self.logger.experiment._get_file_writer()
        for summary in hparams(params, shown):
            writer.add_summary(summary)
        writer.flush()
