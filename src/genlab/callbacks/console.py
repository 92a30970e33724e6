"""A run's console: a progress bar on a terminal only; no empty columns in the model summary."""

from __future__ import annotations

import sys
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichModelSummary, RichProgressBar
from lightning.pytorch.utilities.model_summary import get_human_readable_count


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar on a terminal; nothing when the output goes to a file or a
    pipe, where a redrawn bar is only noise (and raw escape codes)."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not sys.stdout.isatty():
            self.disable()
        super().setup(trainer, pl_module, stage)


class ModelSummary(RichModelSummary):
    """The layers table and parameter counts; the FLOPs column only when FLOPs were measured
    (Lightning shows 0 for every layer otherwise)."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        shown = [(name, values) for name, values in summary_data if name != "FLOPs" or total_flops]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        table.add_column(" ", style="dim")
        for name, _ in shown[1:]:
            table.add_column(name, justify="left" if name in ("Name", "Type", "Mode") else "right")
        for row in zip(*(values for _, values in shown), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        frozen = total_parameters - trainable_parameters
        line = (
            f"params: {get_human_readable_count(int(trainable_parameters))} trainable, "
            f"{get_human_readable_count(int(frozen))} frozen, {model_size:.2f} MB"
        )
        if total_flops:
            line += f", {get_human_readable_count(total_flops)} FLOPs"
        console.print(line)
