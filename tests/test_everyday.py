"""The everyday research workflow: early stopping, debug presets, Lightning's trainer keys given
plainly, resume=auto, and a preempted sweep job that requeues itself and resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import BATCHES_PER_EPOCH, QUIET_AE, TESTS, read_json

from hydra_plugins.genlab_launcher import RequeueingLocalLauncher

COMMON = QUIET_AE


def last_checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def test_early_stopping_stops_when_val_loss_stops_improving_and_says_why(tmp_path, train_cli):
    run_dir = tmp_path / "run"
    # Only a drop of 10 nats counts as better: after the first epoch nothing improves.
    result = train_cli(
        *COMMON,
        "trainer.max_epochs=10",
        "+callbacks=early_stopping",
        "callbacks.early_stopping.patience=2",
        "callbacks.early_stopping.min_delta=10",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stopped early after epoch 2" in result.stdout
    stopped = read_json(run_dir / "run.json")["stopped_early"]
    assert stopped["reason"] == "patience_exhausted"
    assert (stopped["monitor"], stopped["patience"], stopped["epoch"]) == ("val/loss", 2, 2)
    assert last_checkpoint(run_dir)["global_step"] == 3 * BATCHES_PER_EPOCH  # not 10 epochs


def test_a_run_that_keeps_improving_is_not_stopped(tmp_path, train_cli):
    run_dir = tmp_path / "run"
    result = train_cli(
        *COMMON,
        "trainer.max_epochs=3",
        "+callbacks=early_stopping",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stopped_early" not in read_json(run_dir / "run.json")
    assert last_checkpoint(run_dir)["global_step"] == 3 * BATCHES_PER_EPOCH


def test_early_stopping_a_gan_on_auto_is_refused_in_one_line(tmp_path, train_cli):
    result = train_cli(
        "model=gan",
        "logger=none",
        "+callbacks=early_stopping",
        f"hydra.run.dir={tmp_path / 'r'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "callbacks.early_stopping.monitor=auto" in lines[0]
    assert not (tmp_path / "r").exists()


def test_early_stopping_adds_to_the_callbacks_of_an_experiment(tmp_path):
    from hydra import compose, initialize_config_module

    from genlab.run.job import prepare

    prepare()
    with initialize_config_module("genlab.conf", version_base="1.3"):
        cfg = compose(
            "train", overrides=["experiment=translate_numbers", "+callbacks=early_stopping"]
        )
    assert {"early_stopping", "attention_figures", "model_checkpoint"} <= set(cfg.callbacks)


@pytest.mark.parametrize(
    ("preset", "extra"),
    [
        ("fdr", []),
        ("overfit", ["trainer.max_epochs=3", "data.augment=[hflip]"]),
        ("limit", []),
        ("profiler", []),
        ("anomaly", []),
    ],
)
def test_debug_presets_compose_and_run_on_digits(tmp_path, train_cli, preset, extra):
    run_dir = tmp_path / "run"
    result = train_cli(*COMMON, f"debug={preset}", *extra, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    trainer = yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]
    metrics = read_json(run_dir / "metrics.json")
    assert "test/loss" in metrics
    if preset == "fdr":
        assert trainer["fast_dev_run"] is True
        assert not (run_dir / "checkpoints").exists()
    elif preset == "overfit":
        assert trainer["overfit_batches"] == 4
        # The same 4 batches every epoch: augmentation off, in the run's config too.
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["augment"] == []
        assert last_checkpoint(run_dir)["global_step"] == 3 * 4
    elif preset == "limit":
        assert last_checkpoint(run_dir)["global_step"] == 3 * 20
    elif preset == "profiler":
        report = (run_dir / "profiler" / "fit-profile.txt").read_text()
        assert "run_training_epoch" in report
    else:
        assert trainer["detect_anomaly"] is True and trainer["accelerator"] == "cpu"
        assert trainer["deterministic"] is True


def test_lightning_trainer_keys_are_given_plainly(tmp_path, train_cli):
    run_dir = tmp_path / "run"
    result = train_cli(
        *COMMON,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=0.1",
        "trainer.num_sanity_val_steps=0",
        "trainer.max_time=00:00:10:00",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert last_checkpoint(run_dir)["global_step"] == 7  # 10% of 79 batches, rounded down


def test_a_bad_max_time_is_one_line(tmp_path, train_cli):
    result = train_cli(*COMMON, "trainer.max_time=12h", cwd=tmp_path)
    assert result.returncode == 2
    assert "trainer.max_time" in result.stderr and "DD:HH:MM:SS" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_resume_auto_starts_a_new_run_then_continues_an_interrupted_one(
    tmp_path, train_cli, monkeypatch
):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("GENLAB_ALLOWED_TARGETS", "pacing.")  # the test's own callback
    run_dir = tmp_path / "run"
    stop = "+callbacks.stop={_target_:pacing.SignalAt,epoch:1,batch:4}"  # Ctrl+C mid-epoch 1
    first = train_cli(
        *COMMON, "trainer.max_epochs=2", "resume=auto", f"run_dir={run_dir}", stop, cwd=tmp_path
    )
    assert first.returncode == 128 + signal.SIGINT
    record = read_json(run_dir / "run.json")
    assert record["status"] == "interrupted" and "resumed_from" not in record

    again = train_cli(
        *COMMON, "trainer.max_epochs=2", "resume=auto", f"run_dir={run_dir}", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr[-2000:]
    record = read_json(run_dir / "run.json")
    assert record["status"] == "completed" and record["resumed_from"].endswith("last.ckpt")
    assert last_checkpoint(run_dir)["global_step"] == 2 * BATCHES_PER_EPOCH


def test_resume_auto_never_replaces_a_finished_run_without_checkpoints(tmp_path, train_cli):
    run_dir = tmp_path / "run"
    args = [
        "model=ae",
        "logger=none",
        "trainer.max_epochs=1",
        "callbacks=none",
        f"run_dir={run_dir}",
    ]
    assert train_cli(*args, cwd=tmp_path).returncode == 0
    again = train_cli(*args, "resume=auto", cwd=tmp_path)
    assert again.returncode == 2
    assert "already holds a completed run" in again.stderr


def _sweep(tmp_path: Path, sweep_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """One-job sweep through submitit's local executor with genlab's requeueing launcher: the
    same code path as hydra/launcher=slurm, on this machine."""
    env = {**os.environ, "PYTHONPATH": str(TESTS), "PYTHONWARNINGS": "ignore"}
    env["GENLAB_ALLOWED_TARGETS"] = "pacing."
    env.pop("HYDRA_FULL_ERROR", None)
    launcher = f"{RequeueingLocalLauncher.__module__}.{RequeueingLocalLauncher.__name__}"
    return subprocess.run(
        [sys.executable, "-m", "genlab", "-m", *COMMON, "trainer.max_epochs=2", "seed=3"]
        + ["trainer.deterministic=true"]
        + ["hydra/launcher=submitit_local", f"hydra.launcher._target_={launcher}"]
        + [f"hydra.sweep.dir={sweep_dir}", *extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_preempted_sweep_job_requeues_and_ends_as_an_uninterrupted_run(tmp_path):
    plain = _sweep(tmp_path, tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr[-3000:]
    uninterrupted = read_json(tmp_path / "plain" / "0" / "metrics.json")
    # The cluster's notice (SIGUSR2) after the last batch of epoch 0, or in the middle of epoch 1.
    for epoch, batch in ((0, BATCHES_PER_EPOCH - 1), (1, 30)):
        sweep_dir = tmp_path / f"preempted_{epoch}_{batch}"
        notice = f"{{_target_:pacing.SignalAt,epoch:{epoch},batch:{batch},signal_name:SIGUSR2}}"
        done = _sweep(tmp_path, sweep_dir, f"+callbacks.preempt={notice}")
        assert done.returncode == 0, done.stderr[-3000:]
        job = sweep_dir / "0"
        record = read_json(job / "run.json")
        assert record["status"] == "completed"
        assert record["resumed_from"].endswith("last.ckpt") and "resume=auto" in record["overrides"]
        assert [s["status"] for s in record["earlier_segments"]] == ["interrupted"]
        assert sorted(p.name for p in (job / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
        logs = "".join(p.read_text() for p in sweep_dir.rglob("*_log.err"))
        assert "stopping after this batch" in logs and "Caught signal SIGUSR2" in logs
        assert last_checkpoint(job)["global_step"] == 2 * BATCHES_PER_EPOCH
        resumed = read_json(job / "metrics.json")
        assert resumed.keys() == uninterrupted.keys()
        for key, value in uninterrupted.items():
            assert resumed[key] == pytest.approx(value, rel=1e-6), (epoch, batch, key)
        summary = (sweep_dir / "summary.csv").read_text().splitlines()
        assert len(summary) == 2 and ",completed," in summary[1]
