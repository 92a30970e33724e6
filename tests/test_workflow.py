"""Research workflow: sweeps with a summary, Optuna, run records, reproducibility, resume, eval."""

from __future__ import annotations

import csv
import importlib.metadata
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_cli

import genlab
from genlab.cli.evaluate import main as evaluate_main
from genlab.run.sweep import write_summary

QUICK = ["trainer.max_epochs=1", "logger=none"]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_grid_sweep_writes_one_directory_per_job_and_a_summary(train_cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = train_cli(
        "-m",
        "model=ae,vae",
        "model.latent_dim=2,16",
        *QUICK,
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {row["status"] for row in rows} == {"completed"}
    swept = {tuple(o for o in row["overrides"].split() if o.startswith("model")) for row in rows}
    assert swept == {
        ("model=ae", "model.latent_dim=2"),
        ("model=ae", "model.latent_dim=16"),
        ("model=vae", "model.latent_dim=2"),
        ("model=vae", "model.latent_dim=16"),
    }
    for row in rows:
        assert (
            float(row["test/loss"]) == read_json(Path(row["run_dir"]) / "metrics.json")["test/loss"]
        )
    assert (sweep / "summary.md").read_text().count("| completed |") == 4


def test_a_failing_job_is_recorded_and_the_others_run(train_cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = train_cli(
        "-m", "model.latent_dim=2,-1,3", *QUICK, f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    assert result.returncode != 0  # the sweep reports the failure once every job has run
    with (sweep / "summary.csv").open() as f:
        status = {row["overrides"].split()[0]: row["status"] for row in csv.DictReader(f)}
    assert status == {
        "model.latent_dim=2": "completed",
        "model.latent_dim=-1": "failed",
        "model.latent_dim=3": "completed",
    }
    assert (
        "model.latent_dim=-1: must be a positive integer"
        in read_json(sweep / "1" / "run.json")["error"]
    )


def test_optuna_preset_runs_trials_and_finds_a_finite_best(train_cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = train_cli(
        "-m",
        "hparams_search=vae_optuna",
        "hydra.sweeper.n_trials=3",
        *QUICK,
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert math.isfinite(best["best_value"])
    assert set(best["best_params"]) == {"model.optimizer.lr", "model.latent_dim", "data.batch_size"}
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert float(rows[0]["val/loss"]) == pytest.approx(best["best_value"])  # sorted by the metric


def test_python_api_matches_the_cli_and_runs_are_bit_identical(train_cli, tmp_path, monkeypatch):
    args = ["model=vae", "seed=3", "trainer.max_epochs=2", "trainer.deterministic=true"]
    cli_a, cli_b = tmp_path / "a", tmp_path / "b"
    # One run in a fresh interpreter as a user's, one through the same entry point in process.
    for run, run_dir in ((run_cli, cli_a), (train_cli, cli_b)):
        result = run(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    assert (cli_a / "metrics.json").read_bytes() == (cli_b / "metrics.json").read_bytes()

    monkeypatch.chdir(tmp_path)
    metrics = genlab.train([*args, f"hydra.run.dir={tmp_path / 'api'}"])
    assert metrics == read_json(cli_a / "metrics.json")
    assert (tmp_path / "api" / "metrics.json").read_bytes() == (cli_a / "metrics.json").read_bytes()

    record = read_json(cli_a / "run.json")
    assert record["status"] == "completed" and record["seed"] == 3
    assert record["overrides"] == args
    assert record["versions"]["torch"] == importlib.metadata.version("torch")
    for key in (
        "command",
        "git",
        "host",
        "device",
        "start_time",
        "end_time",
        "wall_time_s",
        "config",
    ):
        assert record[key] is not None, key
    assert record["config"]["model"]["input_shape"] == [1, 8, 8]


def test_eval_rebuilds_from_the_saved_config_and_reproduces_test_metrics(
    train_cli, tmp_path, monkeypatch, capfd
):
    run_dir = tmp_path / "run"
    result = train_cli(
        "model=ae",
        "model.latent_dim=8",
        "trainer.max_epochs=2",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trained = read_json(run_dir / "metrics.json")

    # From another directory, with today's defaults (model=vae) differing from the run's.
    monkeypatch.chdir(tmp_path)
    capfd.readouterr()
    evaluate_main([f"run_dir={run_dir}"])
    evaluated = read_json(run_dir / "eval_metrics.json")
    best = str((run_dir / "checkpoints" / "best.ckpt").resolve())
    assert evaluated.pop("checkpoint") == best  # which checkpoint these metrics are of
    assert evaluated == {k: v for k, v in trained.items() if k.startswith("test/")}
    out = capfd.readouterr().out
    assert f"{trained['test/loss']:.6g}" in out and f"tested {best}" in out

    model, datamodule, cfg = genlab.load_run(run_dir)
    assert type(model).__name__ == "Autoencoder" and model.latent_dim == 8
    assert cfg.model.latent_dim == 8 and datamodule.dims == (1, 8, 8)


def test_a_run_saved_before_models_stated_their_pixel_range_loads_and_resumes(
    train_cli, tmp_path, monkeypatch
):
    """Runs made before model configs stated `value_range` saved `data.value_range: auto` and
    no `model.value_range`: genlab-eval gives their recorded test metrics, resuming them is
    accepted, and the GAN's evaluator (FID) still comes from `model.eval`."""
    run_dir = tmp_path / "run"
    args = ["model=gan", "model.latent_dim=8", *QUICK, f"paths.cache_dir={tmp_path / 'cache'}"]
    result = train_cli(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = read_json(run_dir / "metrics.json")
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["data"]["value_range"] == saved["model"]["value_range"] == [-1, 1]
    saved["data"]["value_range"] = "auto"
    del saved["model"]["value_range"]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved))

    monkeypatch.chdir(tmp_path)
    evaluate_main([f"run_dir={run_dir}"])
    evaluated = read_json(run_dir / "eval_metrics.json")
    evaluated.pop("checkpoint")
    assert evaluated == {k: v for k, v in trained.items() if k.startswith("test/")}
    assert "test/fid" in evaluated
    model, datamodule, _ = genlab.load_run(run_dir)
    datamodule.setup()
    assert datamodule.splits["test"].images.min() == -1 and model.value_range == (-1.0, 1.0)

    resumed = train_cli(
        *args, "trainer.max_epochs=2", f"run_dir={run_dir}", "ckpt_path=last", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_json(run_dir / "run.json")["status"] == "completed"


def test_resume_after_epoch_k_equals_an_uninterrupted_run(train_cli, tmp_path):
    common = ["trainer.deterministic=true", "logger=none"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    whole_run = train_cli("trainer.max_epochs=4", *common, f"hydra.run.dir={whole}", cwd=tmp_path)
    assert whole_run.returncode == 0, whole_run.stderr[-3000:]
    first = train_cli(
        "trainer.max_epochs=2", "test=false", *common, f"hydra.run.dir={part}", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = train_cli(
        "trainer.max_epochs=4", *common, f"run_dir={part}", "ckpt_path=last", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_json(part / "metrics.json") == read_json(whole / "metrics.json")
    assert read_json(part / "run.json")["resumed_from"].endswith("last.ckpt")
    assert [p.name for p in tmp_path.iterdir() if p.name == "outputs"] == []  # no new run dir
    checkpoint = torch.load(part / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 3 and checkpoint["global_step"] == 80


def test_resume_refuses_a_different_model_and_names_the_original_overrides(train_cli, tmp_path):
    run_dir = tmp_path / "run"
    assert (
        train_cli(
            "model=ae", "trainer.max_epochs=1", *QUICK[1:], f"hydra.run.dir={run_dir}", cwd=tmp_path
        ).returncode
        == 0
    )
    result = train_cli(f"run_dir={run_dir}", "ckpt_path=last", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "model=ae" in result.stderr and "different model config" in result.stderr

    missing = train_cli(f"run_dir={tmp_path / 'nope'}", "ckpt_path=last", cwd=tmp_path)
    assert missing.returncode == 2 and "no checkpoint at" in missing.stderr


@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_or_copied_run_resumes_in_its_new_place(train_cli, tmp_path, how):
    import shutil

    origin, new = tmp_path / "origin", tmp_path / "new"
    first = train_cli(
        "trainer.max_epochs=1", "test=false", *QUICK[1:], f"hydra.run.dir={origin}", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    (shutil.move if how == "move" else shutil.copytree)(origin, new)
    old_best = origin / "checkpoints" / "best.ckpt"
    stamp = old_best.stat().st_mtime_ns if how == "copy" else None

    resumed = train_cli(
        "trainer.max_epochs=2", "logger=none", f"run_dir={new}", "ckpt_path=last", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # Its own best/last were updated in place (no best-v1.ckpt), the old folder left alone,
    # and the test scored this folder's best checkpoint.
    assert sorted(p.name for p in (new / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert torch.load(new / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    if how == "copy":
        assert old_best.stat().st_mtime_ns == stamp
    evaluate_main([f"run_dir={new}"])
    tested = read_json(new / "metrics.json")["test/loss"]
    assert read_json(new / "eval_metrics.json")["test/loss"] == pytest.approx(tested, rel=1e-6)


def test_continuing_a_run_keeps_what_it_does_not_measure_again(train_cli, tmp_path):
    run_dir = tmp_path / "run"
    first = train_cli("trainer.max_epochs=2", *QUICK[1:], f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    finished = read_json(run_dir / "metrics.json")
    assert {"train/loss", "val/loss", "test/loss"} <= set(finished)

    # Nothing left to train, then a test-only pass: the training metrics stay.
    for args in (["trainer.max_epochs=2"], ["train=false", "ckpt_path=best"]):
        args = [*args, "logger=none", f"run_dir={run_dir}"]
        if "train=false" not in args:
            args.append("ckpt_path=last")
        again = train_cli(*args, cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-3000:]
        assert read_json(run_dir / "metrics.json") == pytest.approx(finished, rel=1e-6)
    record = read_json(run_dir / "run.json")
    assert [s["status"] for s in record["earlier_segments"]] == ["completed", "completed"]
    assert "trainer.max_epochs=2" in record["earlier_segments"][0]["command"]


def test_resume_ignores_where_caches_live_and_suggests_a_clean_command(train_cli, tmp_path):
    run_dir = tmp_path / "run"
    args = ["model=gan", "model.eval.features=none", "trainer.max_epochs=1", "logger=none"]
    first = train_cli(
        *args, f"paths.cache_dir={tmp_path / 'a'}", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    resume = [
        *args[:2],
        "trainer.max_epochs=2",
        "logger=none",
        f"run_dir={run_dir}",
        "ckpt_path=last",
    ]
    moved_cache = train_cli(*resume, f"paths.cache_dir={tmp_path / 'b'}", cwd=tmp_path)
    assert moved_cache.returncode == 0, moved_cache.stderr[-3000:]

    other = train_cli(*resume, "model.latent_dim=8", cwd=tmp_path)
    assert other.returncode == 2 and "different model config" in other.stderr
    assert other.stderr.count("run_dir=") == 1  # once in the suggested command, not repeated


def test_overwrite_leaves_nothing_of_the_earlier_run(train_cli, tmp_path):
    from genlab.cli.generate import main as generate_main

    run_dir = tmp_path / "run"
    assert train_cli(*QUICK, f"hydra.run.dir={run_dir}", cwd=tmp_path).returncode == 0
    generate_main([f"run_dir={run_dir}", "n=4"])
    evaluate_main([f"run_dir={run_dir}"])
    assert (run_dir / "samples.png").is_file() and (run_dir / "eval_metrics.json").is_file()

    again = train_cli("model=ae", *QUICK, "overwrite=true", f"run_dir={run_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not (run_dir / "samples.png").exists() and not (run_dir / "eval_metrics.json").exists()
    assert (run_dir / "train.log").read_text().count("`Trainer.fit` stopped") == 1
    assert "name: ae_digits" in (run_dir / "config.yaml").read_text()


def test_summary_by_job_sorts_job_numbers_as_numbers(tmp_path):
    for job in range(12):
        (tmp_path / str(job)).mkdir()
        (tmp_path / str(job) / "run.json").write_text(
            json.dumps({"status": "completed", "job_num": job, "overrides": [f"seed={job}"]})
        )
    write_summary(tmp_path)
    with (tmp_path / "summary.csv").open() as f:
        assert [int(row["job"]) for row in csv.DictReader(f)] == list(range(12))
    table = (tmp_path / "summary.md").read_text()
    assert "by job" in table
    assert table.index("| 2 | completed") < table.index("| 10 | completed")
