"""CSV: images as PNG files and text samples as a CSV table, beside Lightning's metrics.csv."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from lightning.pytorch.loggers import CSVLogger

from genlab.loggers.base import LoggerAdapter
from genlab.utils.atomic import replace_atomically


class CSVAdapter(LoggerAdapter):
    """`<csv dir>/<tag>/step-<step>.png` for images (`csv/images/samples/step-000120.png`),
    `<csv dir>/<tag>.csv` with columns step, prompt, continuation for text samples."""

    logger_class = CSVLogger
    key = "csv"

    @property
    def folder(self) -> Path:
        return Path(self.logger.log_dir)

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        from PIL import Image

        path = self.folder / tag / f"step-{step:06d}.png"
        replace_atomically(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))

    def log_texts(self, tag: str, rows: list[tuple[str, str]], step: int) -> None:
        path = self.folder / f"{tag}.csv"
        table = io.StringIO(newline="")
        writer = csv.writer(table)
        if not path.is_file():
            writer.writerow(["step", "prompt", "continuation"])
        writer.writerows([step, prompt, text] for prompt, text in rows)
        earlier = path.read_text(encoding="utf-8") if path.is_file() else ""
        text = earlier + table.getvalue()
        replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
