"""A run directory: the one place that names the files genlab keeps in it, reads and writes them,
and decides who may use the directory.

Every write replaces the whole file at once (a reader, or a process killed mid-write, sees the
old file or the new one) and happens in rank 0 only under DDP. A directory is a genlab run when
it holds `run.json`; genlab writes into, continues or replaces only such directories (or new,
empty ones), never `/`, the home folder or the current folder, and one process at a time (the
lock file). Replacing a run deletes only the entries its record lists as genlab's.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from genlab.errors import GenlabError
from genlab.run.distributed import is_rank_zero
from genlab.utils.atomic import replace_atomically


class RunDir:
    """`config.yaml` (the resolved config), `run.json` (the run record), `metrics.json` (final
    metrics), `eval_metrics.json` (genlab-eval's), `checkpoints/` (best.ckpt, last.ckpt),
    `train.log`, and what loggers and tools add (`tensorboard/`, `csv/`, `mlflow/`, `wandb/`,
    `samples.png`, `lr_find.png`)."""

    CONFIG = "config.yaml"
    RECORD = "run.json"
    METRICS = "metrics.json"
    EVAL_METRICS = "eval_metrics.json"
    CHECKPOINTS = "checkpoints"
    LOG = "train.log"  # named by hydra.job.name (conf/hydra/default.yaml)
    HYDRA = ".hydra"  # the composed config before resolution, Hydra's settings, the overrides
    LOCK = ".genlab.lock"  # held while a process works here: its PID, host and start
    SAMPLES = "samples.png"
    PROFILER = "profiler"  # debug=profiler's reports (conf/debug/profiler.yaml)
    ATTENTION = "attention.png"
    LR_FIND = "lr_find.png"  # tune=lr_find's plot of the loss against the learning rate
    # What a run and the tools may create here (loggers: tensorboard/ ... wandb/). A run claims
    # those that do not exist when it starts, in its record's "files"; replacing the run deletes
    # them.
    OUTPUTS = (
        CHECKPOINTS,
        "tensorboard",
        "csv",
        "mlflow",
        "wandb",
        PROFILER,
        CONFIG,
        RECORD,
        METRICS,
        EVAL_METRICS,
        SAMPLES,
        LR_FIND,
        HYDRA,
        LOG,
    )

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
        try:
            cfg = OmegaConf.load(path)
        except (yaml.YAMLError, ValueError, UnicodeDecodeError) as err:
            reason = str(err).strip().splitlines()[0]
            raise GenlabError(f"{path} is not a readable config ({reason})") from None
        if not isinstance(cfg, DictConfig) or not isinstance(cfg.get("model"), DictConfig):
            raise GenlabError(f"{path} has no model config: it is not a genlab run's config")
        return cfg

    def write_config(self, cfg: DictConfig) -> None:
        """The config with every interpolation resolved: what this run really used."""
        self._write(self.CONFIG, OmegaConf.to_yaml(cfg, resolve=True))

    # run.json

    def has_record(self) -> bool:
        return (self.path / self.RECORD).is_file()

    def read_record(self) -> dict[str, Any] | None:
        path = self.path / self.RECORD
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise GenlabError(f"{path} is not a readable run record ({err})") from None
        if not isinstance(record, dict):
            raise GenlabError(f"{path} is not a run record (a JSON object)")
        return record

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
        self._write(self.METRICS, _metrics_json(metrics, status=status))

    def write_eval_metrics(self, metrics: dict[str, float], checkpoint: Path) -> None:
        """genlab-eval's test metrics, and the checkpoint they are of ("checkpoint")."""
        self._write(self.EVAL_METRICS, _metrics_json(metrics, checkpoint=str(checkpoint)))

    def write_hydra_copy(self, cfg: DictConfig, hydra: DictConfig, overrides: list[str]) -> None:
        """`.hydra/`: the config as composed (interpolations kept), Hydra's own settings and
        the command line's overrides, as Hydra would write them (it writes none itself, so that
        nothing lands in an existing run before the run's checks pass)."""
        for name, content in (
            ("config.yaml", cfg),
            ("hydra.yaml", OmegaConf.create({"hydra": hydra})),
            ("overrides.yaml", OmegaConf.create(list(overrides))),
        ):
            self._write(f"{self.HYDRA}/{name}", OmegaConf.to_yaml(content))

    def write_figure(self, name: str, figure: Any) -> Path:
        """A matplotlib figure as a PNG (tune=lr_find's plot); returns its path."""
        if is_rank_zero():
            replace_atomically(self.path / name, lambda tmp: figure.savefig(tmp, format="png"))
        return self.path / name

    # Who may use the directory

    def ownership_problem(self, continuing: bool, overwrite: bool) -> str | None:
        """Why a run may not use this directory, or None: `/`, the home folder and the current
        folder never; a folder that holds anything but a genlab run (run.json) never; a genlab
        run only to continue it, to replace it (overwrite) or when it failed before it got
        anywhere."""
        where = self.path.resolve()
        special = {Path("/"): "the root folder", Path.home().resolve(): "your home folder"}
        special[Path.cwd().resolve()] = "the current folder"
        if where in special:
            return (
                f"run_dir={self.path} is {special[where]}: a run needs a folder of its own, e.g. "
                f"run_dir={self.path / 'my_run'}"
            )
        if where.exists() and not where.is_dir():
            return f"run_dir={self.path} is a file: give a folder for the run"
        record = self.read_record()
        if record is None:
            ignored = (self.LOCK, self.LOG)  # a stale lock; the log Hydra opened for this run
            if where.is_dir() and any(p.name not in ignored for p in where.iterdir()):
                return (
                    f"run_dir={self.path} holds files genlab did not write (it has no run.json): "
                    f"give a new or empty folder for the run"
                )
            return None
        if continuing or overwrite or record.get("status") == "failed":
            return None
        return (
            f"run_dir={self.path} already holds a {record.get('status')} run (its run.json): start "
            f"a new run elsewhere (leave run_dir unset), continue it with ckpt_path=last, or "
            f"replace it with overwrite=true"
        )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock file while the body runs (rank 0). A lock left by a
        process that is gone (on this host) is taken over; one held by a live process, or by
        one on another host, is refused with one line naming it."""
        if not is_rank_zero():
            yield
            return
        path = self.path / self.LOCK
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **_slurm_job(),
        }
        self.path.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read_lock(path)
                if holder is None or _gone(holder):
                    path.unlink(missing_ok=True)
                    continue
                raise GenlabError(
                    f"run_dir={self.path} is in use by process {holder.get('pid')} on "
                    f"{holder.get('host')} since {holder.get('since')} (its {self.LOCK}): wait "
                    f"for that run to end, or delete {path} if that process is gone"
                ) from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            break
        try:
            yield
        finally:
            if _read_lock(path) == me:
                path.unlink(missing_ok=True)

    def claimed_files(self, earlier: list[str] | None) -> list[str]:
        """The entries genlab owns here once a run starts: those an earlier segment claimed
        (for a run recorded before records listed them: every output name there), and the
        output names that do not exist yet, which this run will create."""
        if earlier is None:
            earlier = [name for name in self.OUTPUTS if (self.path / name).exists()]
        fresh = [name for name in self.OUTPUTS if not (self.path / name).exists()]
        return sorted({*earlier, *fresh})

    def clear(self, files: list[str]) -> None:
        """Delete the entries a run's record lists as genlab's (to replace the run)."""
        if not is_rank_zero():
            return
        for name in files:
            if name in (self.LOCK, self.LOG) or "/" in name or name in ("", ".", ".."):
                continue
            path = self.path / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        log_file = self.path / self.LOG
        if log_file.is_file():  # open (appending) for this run already: emptied, not deleted
            log_file.write_text("")

    def discard_failed_start(self) -> bool:
        """Remove a new run that failed before it saved a checkpoint (an error while building
        its data or model, say): its files are genlab's, and nothing in them is worth keeping
        (the error was printed). A run with a checkpoint is kept. True when it was removed."""
        if not is_rank_zero() or (self.checkpoints.is_dir() and any(self.checkpoints.iterdir())):
            return False
        record = self.read_record() or {}
        self.clear(self.claimed_files(record.get("files")))
        for name in (self.RECORD, self.LOG):
            (self.path / name).unlink(missing_ok=True)
        self.discard_if_unused()
        return True

    def discard_if_unused(self) -> None:
        """Remove a folder Hydra made for a run that was refused: it is empty (a directory of
        an earlier run has more, and is kept)."""
        path = self.path
        if path.is_dir() and not any(path.iterdir()) and is_rank_zero():
            with contextlib.suppress(OSError):
                path.rmdir()
                path.parent.rmdir()  # outputs/<name>/, if this was its only run

    def _write(self, name: str, text: str) -> None:
        if is_rank_zero():
            replace_atomically(self.path / name, lambda tmp: tmp.write_text(text))


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _slurm_job() -> dict[str, Any]:
    """The SLURM job this process belongs to, and how often SLURM has restarted it."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return {}
    return {"slurm_job": job, "slurm_restart": int(os.environ.get("SLURM_RESTART_COUNT", "0"))}


def _gone(holder: dict[str, Any]) -> bool:
    """Whether the process that holds a lock has ended: only knowable on its own host (this
    process itself counts as gone: it runs one run at a time), or when it was an earlier start
    of this SLURM job, which SLURM has requeued (on this or another node)."""
    mine = _slurm_job()
    same_job = bool(mine) and holder.get("slurm_job") == mine["slurm_job"]
    if same_job and holder.get("slurm_restart", 0) < mine["slurm_restart"]:
        return True
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _metrics_json(metrics: dict[str, float], **notes: str | None) -> str:
    """Metrics sorted by name, non-finite values as null, then the notes that are set."""
    clean: dict[str, float | str | None] = {
        k: (v if math.isfinite(v) else None) for k, v in sorted(metrics.items())
    }
    clean.update({k: v for k, v in notes.items() if v is not None})
    return json.dumps(clean, indent=2) + "\n"
