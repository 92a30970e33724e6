"""Sweep summary: after every job of a multirun, summary.csv and summary.md in the sweep directory.

Written after each job (not only at the end), so a sweep that is killed or whose last job fails
still leaves an up-to-date table.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from genlab.config.machine import check_multirun
from genlab.errors import user_errors_exit
from genlab.run.console import headline_metric
from genlab.run.distributed import is_rank_zero
from genlab.run.run_dir import RunDir
from genlab.utils.atomic import replace_atomically

_FIXED = ["job", "status", "overrides", "tags", "wall_time_s"]


def _rows(sweep_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for record_path in sorted(sweep_dir.glob(f"*/{RunDir.RECORD}")):
        run_dir = RunDir(record_path.parent)
        record = run_dir.read_record() or {}
        # A run that stopped early says so in run.json as well; non-finite values stay blank.
        metrics = {k: None if math.isnan(v) else v for k, v in run_dir.read_metrics().items()}
        rows.append(
            {
                "job": record.get("job_num", run_dir.path.name),
                "status": record.get("status", "unknown"),
                "overrides": " ".join(record.get("overrides", [])),
                "tags": " ".join(record.get("tags", [])),
                "wall_time_s": record.get("wall_time_s"),
                **metrics,
                "run_dir": str(run_dir.path),
            }
        )
    return rows


def _job_order(job: Any) -> tuple[int, int, str]:
    """Job numbers in numeric order (2 before 10), other names after them as text."""
    text = str(job)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _sort_key(metric: str | None, maximize: bool):
    def key(row: dict[str, Any]) -> tuple:
        value = row.get(metric) if metric else None
        if not isinstance(value, (int, float)) or math.isnan(value):
            return (1, 0.0, _job_order(row["job"]))
        return (0, -value if maximize else value, _job_order(row["job"]))

    return key


def write_summary(sweep_dir: Path, metric: str | None = None, maximize: bool = False) -> Path:
    """Write summary.csv and summary.md for the jobs under `sweep_dir`; return the .md path."""
    rows = sorted(_rows(sweep_dir), key=_sort_key(metric, maximize))
    metric_names = sorted({k for row in rows for k in row} - set(_FIXED) - {"run_dir"})
    if metric in metric_names:
        metric_names.remove(metric)
        metric_names.insert(0, metric)
    columns = [*_FIXED, *metric_names, "run_dir"]

    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    csv_text = table.getvalue()
    replace_atomically(sweep_dir / "summary.csv", lambda tmp: tmp.write_text(csv_text))

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.6g}"
        return "" if value is None else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    order = f"sorted by {metric} ({'max' if maximize else 'min'} first)" if metric else "by job"
    title = f"# Sweep summary: {len(rows)} jobs, {order}\n\n"
    md_path = sweep_dir / "summary.md"
    markdown = title + "\n".join(lines) + "\n"
    replace_atomically(md_path, lambda tmp: tmp.write_text(markdown))
    return md_path


def _job_line(config: DictConfig, run_dir: RunDir) -> str:
    """One line per finished job: its number, status, overrides, headline metric, time."""
    record = run_dir.read_record() or {}
    metrics = run_dir.read_metrics()
    key = headline_metric(config, metrics)
    shown = f"  {key} {metrics[key]:.6g}" if key else ""
    wall = record.get("wall_time_s")
    took = f"  ({wall:.0f} s)" if isinstance(wall, (int, float)) else ""
    overrides = " ".join(config.hydra.overrides.task)
    return f"job {config.hydra.job.num}: {record.get('status', 'failed')}  {overrides}{shown}{took}"


def _direction_is_max(config: DictConfig) -> bool:
    direction = config.hydra.sweeper.get("direction", "minimize")
    if not isinstance(direction, str):  # multi-objective: sort by the first
        direction = direction[0]
    return str(direction).lower().startswith("max")


class SweepSummary(Callback):
    """Hydra callback (see conf/hydra/default.yaml) that keeps the sweep's summary current.

    It also refuses, before the first job, a sweep whose jobs would each start several processes
    under a launcher that cannot (see `genlab.config.machine.multirun_problem`). Under SLURM every
    rank of a job ends the job: rank 0 alone writes the summary.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with user_errors_exit():
            check_multirun(config.get("trainer"), config.hydra.launcher)
        if "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower():
            import optuna

            # Optuna's own handler prints colour codes even into files: its lines go through
            # the sweep's logging instead, as plain lines.
            optuna.logging.disable_default_handler()
            optuna.logging.enable_propagation()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or not is_rank_zero():
            return
        run_dir = RunDir(config.hydra.runtime.output_dir)
        if job_return.status == JobStatus.FAILED and not run_dir.has_record():
            # Failed before genlab could write its record (e.g. a config error): record it here.
            record = {
                "status": "failed",
                "job_num": config.hydra.job.num,
                "overrides": list(config.hydra.overrides.task),
                "error": repr(job_return._return_value),
            }
            run_dir.write_record(record)
        write_summary(
            Path(config.hydra.sweep.dir), config.get("optimized_metric"), _direction_is_max(config)
        )
        print(_job_line(config, run_dir), flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            path = write_summary(
                sweep_dir, config.get("optimized_metric"), _direction_is_max(config)
            )
            print(f"genlab: sweep summary in {path}")
