"""run.json: what ran, where, with which code and versions, and how it ended (written by rank 0)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from genlab.run.run_dir import RunDir

_SOURCE_DIR = Path(__file__).resolve().parent
# What run.json keeps of each earlier segment of a run continued in its directory.
_SEGMENT_KEYS = (
    "command",
    "status",
    "segment_status",
    "start_time",
    "end_time",
    "wall_time_s",
    "resumed_from",
)


def _git_state(folder: Path) -> dict[str, Any]:
    """Commit and dirtiness of the git checkout holding genlab's source, if it is one."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("genlab", "torch", "lightning", "hydra-core", "transformers"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def _device() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunRecord:
    """Keeps a run's `run.json` current: written at start (status "running") and at the end.

    `status` is the run's and only moves forward: a segment that fails (a resume that could not
    start, say) leaves a completed, interrupted or diverged run as it was, and says so in
    `segment_status`. `id` names the run across segments; `files` lists the entries of its
    directory that genlab owns, which replacing the run (overwrite=true) deletes.
    """

    def __init__(self, cfg: DictConfig, run_dir: RunDir, overrides: list[str]):
        self.run_dir = run_dir
        self._start = time.perf_counter()
        earlier = run_dir.read_record()
        self._earlier_status = earlier.get("status") if earlier else None
        self.data: dict[str, Any] = {
            "id": (earlier or {}).get("id") or uuid.uuid4().hex,
            "status": "running",
            "segment_status": "running",
            "files": run_dir.claimed_files(earlier.get("files") if earlier else []),
            "command": sys.argv,
            "overrides": overrides,
            "tags": list(cfg.get("tags") or []),
            "seed": cfg.get("seed"),
            "run_dir": str(run_dir.path.resolve()),
            "git": _git_state(_SOURCE_DIR),
            "versions": _versions(),
            "host": socket.gethostname(),
            "device": _device(),
            "start_time": _now(),
            "end_time": None,
            "wall_time_s": None,
            "config": OmegaConf.to_container(cfg, resolve=True),
        }
        if earlier:  # a resumed or re-tested run: how it got here, segment by segment
            self.data["earlier_segments"] = [
                *earlier.get("earlier_segments", []),
                {key: earlier.get(key) for key in _SEGMENT_KEYS if key in earlier},
            ]
        self.write()

    def finish(self, status: str, error: str | None = None) -> None:
        run_status = status
        if status == "failed" and self._earlier_status not in (None, "failed"):
            run_status = self._earlier_status  # what the run had reached stands
        self.data.update(status=run_status, segment_status=status, end_time=_now())
        self.data["wall_time_s"] = round(time.perf_counter() - self._start, 3)
        if error:
            self.data["error"] = error
        self.write()

    def write(self) -> None:
        self.run_dir.write_record(self.data)
