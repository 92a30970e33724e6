"""tune=lr_find and tune=batch_size: Lightning's tuner before fit, its finding in the config the
run trains with, in run.json, and (the LR plot) in the run directory and the loggers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

QUICK = ["model=ae", "callbacks.progress_bar=null"]
ONE_EPOCH = "trainer.max_epochs=1"
LR_FIND = ["tune=lr_find", "tune.num_training=30"]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("genlab: error: ")]


def saved(run_dir: Path) -> tuple[dict, dict, float]:
    """run.json, config.yaml, and the learning rate the last checkpoint's optimizer has."""
    record = json.loads((run_dir / "run.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return record, config, checkpoint["optimizer_states"][0]["param_groups"][0]["lr"]


def test_lr_find_trains_with_the_suggestion_and_shows_the_plot(train_cli, tmp_path):
    run_dir = tmp_path / "run"
    result = train_cli(
        *QUICK, ONE_EPOCH, *LR_FIND, "logger=tensorboard", f"run_dir={run_dir}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]

    record, config, lr = saved(run_dir)
    tuned = record["tuned"]
    assert tuned["finder"] == "lr_find" and tuned["applied"] and tuned["configured"] == 1e-3
    assert tuned["found"] > 0 and tuned["found"] != 1e-3
    # The config the run wrote (and run.json's copy) holds the rate it trained with.
    assert config["model"]["optimizer"]["lr"] == tuned["found"] == lr
    assert record["config"]["model"]["optimizer"]["lr"] == lr
    assert "tune=lr_find: model.optimizer.lr=" in result.stdout
    assert (run_dir / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lr_find.png" in record["files"]
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert "tune/lr_find" in events.Tags()["images"]

    # Continued in its directory, the run is not tuned again and keeps the rate it found.
    resume = [f"run_dir={run_dir}", "ckpt_path=last", "trainer.max_epochs=2"]
    result = train_cli(*QUICK, *LR_FIND, *resume, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tune=lr_find:" not in result.stdout
    record, config, lr = saved(run_dir)
    assert config["model"]["optimizer"]["lr"] == tuned["found"] == lr
    assert record["tuned"] == tuned


def test_lr_find_with_apply_false_records_the_suggestion_only(train_cli, tmp_path):
    run_dir = tmp_path / "run"
    args = [*QUICK, ONE_EPOCH, *LR_FIND, "tune.apply=false", "logger=none", "test=false"]
    result = train_cli(*args, f"run_dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    record, config, lr = saved(run_dir)
    assert record["tuned"]["found"] > 0 and not record["tuned"]["applied"]
    assert config["model"]["optimizer"]["lr"] == 1e-3 == lr
    assert (run_dir / "lr_find.png").is_file()


def test_batch_size_finder_sets_the_batch_size(train_cli, tmp_path):
    run_dir = tmp_path / "run"
    args = ["tune=batch_size", "tune.init_val=16", "tune.max_trials=2", "tune.steps_per_trial=1"]
    result = train_cli(*QUICK, ONE_EPOCH, *args, "logger=none", f"run_dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    record, config, _ = saved(run_dir)
    # On a CPU nothing runs out of memory: 16, then 32, the last of the two trials.
    assert record["tuned"] == {
        "finder": "batch_size",
        "key": "data.batch_size",
        "found": 32,
        "configured": 64,
        "applied": True,
    }
    assert config["data"]["batch_size"] == 32
    assert not (run_dir / "lr_find.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["model=gan", "tune=lr_find"], "GAN (model) trains with 2 optimizers"),
        (["model=dcgan", "tune=lr_find"], "DCGAN (model) trains with 2 optimizers"),
        (["tune=batch_size", "~data.batch_size"], "tune=batch_size sets data.batch_size"),
        (
            ["tune=lr_find", "tune.mode=power"],
            "tune.mode=power: must be exponential or linear for tune=lr_find",
        ),
    ],
)
def test_a_tune_that_cannot_work_is_refused_in_one_line(train_cli, tmp_path, args, message):
    result = train_cli(*args, ONE_EPOCH, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*"))
