"""hydra/launcher=local_parallel: a sweep's jobs at once, each in a process of its own pinned to
its own cores (or GPUs); the summary complete, a failed job recorded, DDP refused, Ctrl+C passed
on to the jobs."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import run_cli

import genlab.run.launcher as launcher
from genlab.run.threads import usable_cores

PARALLEL = ["-m", "hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2"]
QUICK = [
    "model=ae",
    "trainer.max_epochs=1",
    "logger=none",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.image_grids=null",
    "callbacks.lr_monitor=null",
]
TWO_CORES = pytest.mark.skipif(len(usable_cores()) < 2, reason="two jobs at once need 2 cores")
# The line a job's process logs first (the time in train.log is local, to the millisecond).
JOB_LINE = re.compile(
    r"\[([-\d]+ [:,\d]+)\]\S* - job \d+ runs in process (\d+) on CPU cores (\d+(?:,\d+)*)"
)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def where(job_dir: Path) -> tuple[int, set[int], datetime]:
    """The process and CPU cores a job's log says it ran on, and when it began."""
    [(stamp, pid, cores)] = JOB_LINE.findall((job_dir / "train.log").read_text())
    began = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone()
    return int(pid), {int(c) for c in cores.split(",")}, began


def summary(sweep_dir: Path) -> list[dict]:
    with (sweep_dir / "summary.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Four jobs, two at a time, as a user runs them (`python -m genlab -m ...`)."""
    root = tmp_path_factory.mktemp("parallel")
    sweep_dir = root / "sweep"
    result = run_cli(
        *PARALLEL, "model.latent_dim=2,4,8,16", *QUICK, f"hydra.sweep.dir={sweep_dir}", cwd=root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir


def test_every_job_completes_and_the_summary_lists_them_all(sweep):
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    for job in range(4):
        record = read_json(sweep / str(job) / "run.json")
        assert (record["status"], record["job_num"]) == ("completed", job)
        assert f"model.latent_dim={2 ** (job + 1)}" in record["overrides"]
        assert "hydra/launcher=local_parallel" in record["command"]  # the sweep's command
    rows = summary(sweep)
    assert sorted(int(row["job"]) for row in rows) == [0, 1, 2, 3]
    for row in rows:
        assert row["status"] == "completed"
        metrics = read_json(Path(row["run_dir"]) / "metrics.json")
        assert float(row["test/loss"]) == metrics["test/loss"]
    assert (sweep / "summary.md").read_text().count("| completed |") == 4


@TWO_CORES
def test_jobs_run_at_once_each_in_a_process_of_its_own(sweep):
    pids = [where(sweep / str(job))[0] for job in range(4)]
    assert len(set(pids)) == 4 and os.getpid() not in pids
    # Each of the first two began before the other's run ended (run.json, to the second):
    # one after the other, the second would begin after the first had ended.
    began = [where(sweep / str(job))[2] for job in (0, 1)]
    ended = [
        datetime.fromisoformat(read_json(sweep / str(job) / "run.json")["end_time"])
        for job in (0, 1)
    ]
    assert max(began) < min(ended)


@TWO_CORES
def test_each_job_runs_on_its_own_share_of_the_cores(sweep):
    first, second = (cores for cores, _ in launcher.job_places(2))
    assert set(first).isdisjoint(second) and set(first) | set(second) == set(usable_cores())
    cores = [where(sweep / str(job))[1] for job in range(4)]
    assert cores[0] == set(first) and cores[1] == set(second)  # the two that started together
    assert all(c in (set(first), set(second)) for c in cores[2:])
    for job, job_cores in enumerate(cores):
        # threads=auto took the cores of the job's share (no more).
        assert 1 <= read_json(sweep / str(job) / "run.json")["threads"] <= len(job_cores)


def test_places_deal_out_gpus_and_cores(monkeypatch):
    monkeypatch.setattr(launcher, "usable_cores", lambda: list(range(16)))
    monkeypatch.setattr(launcher, "cuda_devices", lambda: 8)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    places = launcher.job_places(None)  # one job per GPU
    assert [gpus for _, gpus in places] == [[str(i)] for i in range(8)]
    assert [cores for cores, _ in places][:2] == [[0, 1], [2, 3]]
    assert [gpus for _, gpus in launcher.job_places(4)][1] == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7,0,1,2,3")
    assert [gpus for _, gpus in launcher.job_places(8)][0] == ["4"]
    monkeypatch.setattr(launcher, "cuda_devices", lambda: 0)
    assert launcher.job_places(None) == [(list(range(i * 4, i * 4 + 4)), []) for i in range(4)]
    assert [cores for cores, _ in launcher.job_places(32)][17] == [1]  # more jobs than cores


def test_a_failing_job_is_recorded_and_the_other_completes(train_cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = train_cli(
        *PARALLEL, "model.latent_dim=2,-1", *QUICK, f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path
    )
    assert result.returncode != 0  # the sweep reports the failure once every job has run
    status = {row["overrides"].split()[0]: row["status"] for row in summary(sweep_dir)}
    assert status == {"model.latent_dim=2": "completed", "model.latent_dim=-1": "failed"}
    error = read_json(sweep_dir / "1" / "run.json")["error"]
    assert "model.latent_dim=-1: must be a positive integer" in error


def test_ddp_inside_a_parallel_sweep_is_refused(train_cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = train_cli(
        *PARALLEL,
        "accelerator=ddp_cpu",
        "model.latent_dim=2,4",
        "logger=none",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    [line] = [line for line in result.stderr.splitlines() if line.startswith("genlab: error:")]
    assert "multi-process trainer" in line and "hydra/launcher=slurm" in line
    assert not (sweep_dir / "0").exists()


@TWO_CORES
def test_ctrl_c_stops_the_running_jobs_and_starts_no_more(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = [*PARALLEL, "model.latent_dim=2,4,8", *QUICK, "trainer.max_epochs=1000"]
    command = [sys.executable, "-m", "genlab", *args, f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with (tmp_path / "out.txt").open("w") as out:
        sweep = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
        try:
            last = [sweep_dir / str(job) / "checkpoints" / "last.ckpt" for job in (0, 1)]
            deadline = time.monotonic() + 120
            while not all(p.is_file() for p in last) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert all(p.is_file() for p in last), (tmp_path / "out.txt").read_text()[-3000:]
            sweep.send_signal(signal.SIGINT)  # the sweep's process alone, as a terminal would
            assert sweep.wait(timeout=60) == 128 + signal.SIGINT
        finally:
            sweep.kill()
    output = (tmp_path / "out.txt").read_text()
    assert "stopping the sweep's 2 running jobs; 1 not started" in output
    for job in (0, 1):
        assert read_json(sweep_dir / str(job) / "run.json")["status"] == "interrupted"
        assert not Path(f"/proc/{where(sweep_dir / str(job))[0]}").exists()  # ended
    assert output.count("resume with: genlab-train") == 2  # each saved its checkpoint
    assert not (sweep_dir / "2").exists()
