"""A run directory: the one place that names the files genlab keeps in it, and reads and writes
them. Every write replaces the whole file at once (a reader, or a process killed mid-write, sees
the old file or the new one) and happens in rank 0 only under DDP."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from genlab.errors import GenlabError
from genlab.run.distributed import is_rank_zero
from genlab.utils.atomic import replace_atomically


class RunDir:
    """`config.yaml` (the resolved config), `run.json` (the run record), `metrics.json` (final
    metrics), `eval_metrics.json` (genlab-eval's), `checkpoints/` (best.ckpt, last.ckpt),
    `train.log`, and what loggers and tools add (`tensorboard/`, `csv/`, `samples.png`)."""

    CONFIG = "config.yaml"
    RECORD = "run.json"
    METRICS = "metrics.json"
    EVAL_METRICS = "eval_metrics.json"
    CHECKPOINTS = "checkpoints"
    LOG = "train.log"
    SAMPLES = "samples.png"
    ATTENTION = "attention.png"
    # What a training run and the tools leave (Hydra's .hydra/ and train.log aside): cleared
    # by overwrite=true, so nothing of an earlier run mixes in.
    OUTPUTS = (CHECKPOINTS, "tensorboard", "csv", CONFIG, RECORD, METRICS, EVAL_METRICS, SAMPLES)

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDir:
        """A checkpoint's run directory: the parent of its `checkpoints/` folder."""
        return cls(Path(checkpoint).resolve().parent.parent)

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    def checkpoint(self, name: str) -> Path:
        """`checkpoints/<name>.ckpt` ("best" or "last")."""
        return self.checkpoints / f"{name}.ckpt"

    # config.yaml

    def has_config(self) -> bool:
        return (self.path / self.CONFIG).is_file()

    def read_config(self) -> DictConfig:
        path = self.path / self.CONFIG
        if not path.is_file():
            raise GenlabError(f"{path} not found: run_dir must be a genlab run directory")
        return OmegaConf.load(path)

    def write_config(self, cfg: DictConfig) -> None:
        """The config with every interpolation resolved: what this run really used."""
        self._write(self.CONFIG, OmegaConf.to_yaml(cfg, resolve=True))

    # run.json

    def has_record(self) -> bool:
        return (self.path / self.RECORD).is_file()

    def read_record(self) -> dict[str, Any] | None:
        path = self.path / self.RECORD
        return json.loads(path.read_text()) if path.is_file() else None

    def write_record(self, record: dict[str, Any]) -> None:
        self._write(self.RECORD, json.dumps(record, indent=2, default=str) + "\n")

    # metrics.json and eval_metrics.json

    def read_metrics(self) -> dict[str, float]:
        """The metrics an earlier segment of this run wrote (empty if none), as floats: null
        (a non-finite value) is NaN, and the `status` of a run that stopped early is left out."""
        path = self.path / self.METRICS
        if not path.is_file():
            return {}
        saved = json.loads(path.read_text())
        return {k: math.nan if v is None else float(v) for k, v in saved.items() if k != "status"}

    def write_metrics(self, metrics: dict[str, float], status: str | None = None) -> None:
        """One flat object, keys sorted, NaN/inf as null. A run that stopped early (`status`
        "interrupted" or "diverged") says so in a `status` key next to the metrics it reached;
        a finished run's file holds metrics only."""
        self._write(self.METRICS, _metrics_json(metrics, status))

    def write_eval_metrics(self, metrics: dict[str, float]) -> None:
        self._write(self.EVAL_METRICS, _metrics_json(metrics))

    # The directory as a whole

    def reuse_problem(self, continuing: bool, overwrite: bool) -> str | None:
        """Why a new run may not start here: the directory holds a run that got anywhere, and
        the user neither continues it nor asks to replace it."""
        record = self.read_record()
        if not record or record.get("status") == "failed" or continuing or overwrite:
            return None
        return (
            f"run_dir={self.path} already holds a {record.get('status')} run (its run.json): start "
            f"a new run elsewhere (leave run_dir unset), continue it with ckpt_path=last, or "
            f"replace it with overwrite=true"
        )

    def clear_outputs(self) -> None:
        """Delete what an earlier run left here (overwrite=true)."""
        if not is_rank_zero():
            return
        for name in self.OUTPUTS:
            path = self.path / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        log_file = self.path / self.LOG
        if log_file.is_file():  # open (appending) for this run already: emptied, not deleted
            log_file.write_text("")

    def discard_if_unused(self) -> None:
        """Remove a folder Hydra made for a run that was refused: it holds only Hydra's config
        copy and the log (a directory of an earlier run has more, and is kept)."""
        path = self.path
        unused = path.is_dir() and {p.name for p in path.iterdir()} <= {".hydra", self.LOG}
        if unused and is_rank_zero():
            shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(OSError):  # outputs/<name>/, if this was its only run
                path.parent.rmdir()

    def _write(self, name: str, text: str) -> None:
        if is_rank_zero():
            replace_atomically(self.path / name, lambda tmp: tmp.write_text(text))


def _metrics_json(metrics: dict[str, float], status: str | None = None) -> str:
    clean: dict[str, float | str | None] = {
        k: (v if math.isfinite(v) else None) for k, v in sorted(metrics.items())
    }
    if status is not None:
        clean["status"] = status
    return json.dumps(clean, indent=2) + "\n"
