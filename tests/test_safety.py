"""The user's files and machine are safe: genlab deletes and writes only in run directories it
owns, one run at a time, never downgrades a finished run, writes every file whole, and builds
nothing from a config file that is not genlab's or an allowed library's class.

Each test reproduces a finding of a hostile or careless use (issue 14)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

import genlab
from genlab.cli.evaluate import main as evaluate_main
from genlab.cli.export import main as export_main
from genlab.errors import GenlabError
from genlab.run.run_dir import RunDir

FAST = ["trainer.max_epochs=1", "logger=none", "callbacks.progress_bar=null"]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("genlab: error: ")]


def assert_refused(result, *needles: str) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A completed VAE run on digits (its own copy is made by each test that changes it)."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    genlab.train([*FAST, "model.latent_dim=2", f"hydra.run.dir={run_dir}"])
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


# 1. overwrite=true deleted in folders that hold no genlab run.


def test_overwrite_refuses_a_folder_that_is_not_a_genlab_run(train_cli, tmp_path):
    project = tmp_path / "proj"
    (project / "checkpoints").mkdir(parents=True)
    (project / "checkpoints" / "important.pt").write_text("weights")
    (project / "csv").mkdir()
    (project / "csv" / "data.csv").write_text("a,b")
    before = tree(project)
    result = train_cli(*FAST, f"run_dir={project}", "overwrite=true", "logger=csv", cwd=tmp_path)
    assert_refused(result, f"run_dir={project}", "run.json")
    assert tree(project) == before


@pytest.mark.parametrize("where", ["home", "cwd"])
def test_home_and_the_current_folder_are_never_run_directories(
    train_cli, tmp_path, monkeypatch, where
):
    home = tmp_path / "home"
    (home / "tensorboard").mkdir(parents=True)
    (home / "tensorboard" / "mine.txt").write_text("keep")
    monkeypatch.setenv("HOME", str(home))
    run_dir = "${oc.env:HOME}" if where == "home" else "."
    result = train_cli(*FAST, f"run_dir={run_dir}", "overwrite=true", cwd=home)
    assert_refused(result, "a folder of its own")
    assert tree(home) == {"tensorboard/mine.txt": b"keep"}


def test_overwrite_deletes_only_what_the_run_lists_as_its_own(train_cli, run_copy, tmp_path):
    record = json.loads((run_copy / "run.json").read_text())
    assert {"checkpoints", "config.yaml", "run.json", ".hydra"} <= set(record["files"])
    (run_copy / "notes.txt").write_text("my notes")  # added after the run
    old_id = record["id"]
    result = train_cli(*FAST, f"run_dir={run_copy}", "overwrite=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_copy / "notes.txt").read_text() == "my notes"
    replaced = json.loads((run_copy / "run.json").read_text())
    assert replaced["id"] != old_id and "earlier_segments" not in replaced
    assert "notes.txt" not in replaced["files"]


def test_the_root_folder_is_never_a_run_directory():
    problem = RunDir("/").ownership_problem(continuing=False, overwrite=True)
    assert problem is not None and "a folder of its own" in problem


# 2. A folder that is not a run lost its config.yaml and metrics.json.


def test_a_folder_that_is_not_a_run_is_refused_without_overwrite_too(train_cli, tmp_path):
    folder = tmp_path / "analysis"
    folder.mkdir()
    (folder / "config.yaml").write_text("mine: 1\n")
    (folder / "metrics.json").write_text('{"mine": 1}\n')
    before = tree(folder)
    result = train_cli(*FAST, f"run_dir={folder}", cwd=tmp_path)
    assert_refused(result, f"run_dir={folder}", "did not write")
    assert tree(folder) == before
    continued = train_cli(*FAST, f"run_dir={folder}", "ckpt_path=last", cwd=tmp_path)
    assert continued.returncode == 2 and tree(folder) == before


# 3. A failed resume marked a completed run failed, and lifted its protection.


def test_a_failed_resume_keeps_the_run_completed_and_protected(train_cli, tmp_path):
    images = tmp_path / "images"
    for name in ("a", "b"):
        (images / name).mkdir(parents=True)
        for i in range(6):
            from PIL import Image

            Image.new("L", (8, 8), color=40 * i).save(images / name / f"{i}.png")
    run_dir = tmp_path / "run"
    args = [*FAST, "model=ae", "data=image_folder", f"data.path={images}", "data.image_size=8"]
    args += ["data.channels=1", "data.num_workers=0", "data.batch_size=4"]
    assert train_cli(*args, f"run_dir={run_dir}", cwd=tmp_path).returncode == 0
    shutil.rmtree(images)  # the resume fails when it loads its data, after it has started
    failed = train_cli(*args, f"run_dir={run_dir}", "ckpt_path=last", cwd=tmp_path)
    assert failed.returncode == 2, failed.stderr[-3000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["segment_status"] == "failed"
    kept = tree(run_dir)
    other = train_cli(*FAST, "model=vae", f"run_dir={run_dir}", cwd=tmp_path)
    assert_refused(other, f"run_dir={run_dir}", "completed")
    assert sorted(tree(run_dir)) == sorted(kept)  # no best-v1.ckpt beside best.ckpt


# 4. overwrite=true cleared a directory under the process training in it.


def test_a_run_directory_in_use_is_refused_naming_its_holder(train_cli, run_copy, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": holder.pid, "host": socket.gethostname(), "since": "2026-12-02T10:00:00"}
        (run_copy / RunDir.LOCK).write_text(json.dumps(lock))
        before = tree(run_copy)
        result = train_cli(*FAST, f"run_dir={run_copy}", "overwrite=true", cwd=tmp_path)
        assert_refused(result, "in use", f"process {holder.pid}", socket.gethostname())
        assert tree(run_copy) == before
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock is stale, and the run may be replaced.
    result = train_cli(*FAST, f"run_dir={run_copy}", "overwrite=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (run_copy / RunDir.LOCK).exists()


# 5. A refused run rewrote the completed run's .hydra/ copies.


@pytest.mark.parametrize("how", ["run_dir", "hydra.run.dir"])
def test_a_refused_run_writes_nothing_into_an_existing_run(train_cli, run_copy, tmp_path, how):
    before = tree(run_copy)
    result = train_cli(
        *FAST, f"{how}={run_copy}", "overwrite=true", "data.batch_size=0", cwd=tmp_path
    )
    assert_refused(result, "data.batch_size=0")
    assert tree(run_copy) == before
    second = train_cli(*FAST, f"{how}={run_copy}", cwd=tmp_path)  # a second run, same place
    assert_refused(second, "completed")
    assert tree(run_copy) == before


# 6. config.yaml was written in place and cut short on a full disk; disk errors were tracebacks.


def test_a_full_disk_keeps_the_files_whole_and_says_which_file(run_copy, tmp_path):
    before = {name: (run_copy / name).read_bytes() for name in ("config.yaml", "run.json")}

    def small_files() -> None:  # every file this process writes stops at 1,000 bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    result = subprocess.run(
        [sys.executable, "-m", "genlab", *FAST, f"run_dir={run_copy}", "ckpt_path=last"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "ignore"},
        preexec_fn=small_files,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # run.json is the first file a run writes (it marks the directory as a run's).
    assert_refused(result, "cannot write", str(run_copy / "run.json"), "too large")
    assert {name: (run_copy / name).read_bytes() for name in before} == before
    assert not list(run_copy.glob(".*.tmp"))


# 7. genlab-export wrote into (or claimed to write) a file or a folder of the user's.


@pytest.fixture(scope="module")
def gpt2_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gpt2")
    corpus = folder / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question. " * 60)
    run_dir = folder / "run"
    genlab.train(
        [
            *FAST,
            "model=gpt2",
            "data=text",
            f"data.path={corpus}",
            "data.block_size=16",
            "model.n_layer=1",
            "model.n_head=2",
            "model.n_embd=16",
            "model.n_positions=32",
            f"paths.cache_dir={folder / 'cache'}",
            f"hydra.run.dir={run_dir}",
        ]
    )
    return run_dir


@pytest.mark.parametrize("existing", ["file", "folder"])
def test_export_never_writes_over_the_users_files(gpt2_run, tmp_path, capsys, existing):
    out = tmp_path / "out"
    if existing == "file":
        out.write_text("notes")
    else:
        out.mkdir()
        (out / "config.json").write_text('{"mine": true}')
    before = out.read_bytes() if existing == "file" else tree(out)
    with pytest.raises(SystemExit) as exit:
        export_main([f"run_dir={gpt2_run}", f"out={out}"])
    assert exit.value.code == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and f"out={out}" in lines[0]
    assert (out.read_bytes() if existing == "file" else tree(out)) == before
    # A new folder is written whole.
    export_main([f"run_dir={gpt2_run}", f"out={tmp_path / 'new'}"])
    assert {"config.json", "model.safetensors"} <= {p.name for p in (tmp_path / "new").iterdir()}


# 8. A run folder's config.yaml could make genlab-eval call any function.


def test_a_config_file_cannot_run_code(run_copy, tmp_path, capsys):
    marker = tmp_path / "pwned"
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["data"] = {"_target_": "builtins.open", "_args_": [str(marker), "w"]}
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as exit:
        evaluate_main([f"run_dir={run_copy}"])
    assert exit.value.code == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "data._target_=builtins.open" in lines[0]
    assert not marker.exists()
    with pytest.raises(GenlabError, match="builtins.open"):
        genlab.load_run(run_copy)
    assert not marker.exists()


def test_targets_from_genlab_and_the_allowed_libraries_still_build(train_cli, tmp_path):
    result = train_cli(
        *FAST,
        "+model.scheduler._target_=torch.optim.lr_scheduler.StepLR",
        "+model.scheduler._partial_=true",
        "+model.scheduler.step_size=1",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    refused = train_cli(
        *FAST, "+callbacks.evil._target_=os.system", "+callbacks.evil.command=true", cwd=tmp_path
    )
    assert_refused(refused, "callbacks.evil._target_=os.system")
    assert REPO.is_dir()


def test_a_requeued_slurm_job_takes_over_the_lock_of_its_earlier_start(tmp_path, monkeypatch):
    """A job killed before it could remove its lock, then requeued by SLURM onto another node:
    the lock names the other host, but the same job id with a lower restart count."""
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    earlier = {"pid": 1, "host": "node-a", "since": "2026-12-02T10:00:00", "slurm_job": "42"}
    (run_dir.path / RunDir.LOCK).write_text(json.dumps({**earlier, "slurm_restart": 0}))
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")  # the same start: still in use
    with pytest.raises(GenlabError, match="in use by process 1 on node-a"), run_dir.locked():
        pass
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    with run_dir.locked():
        held = json.loads((run_dir.path / RunDir.LOCK).read_text())
        assert (held["slurm_job"], held["slurm_restart"]) == ("42", 1)
    assert not (run_dir.path / RunDir.LOCK).exists()
