"""genlab-train end to end: every model on every dataset leaves a complete run directory."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import FASHION_DIR, REPO, make_mnist_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from genlab.models.vae import VAE


def tensorboard_tags(run_dir: Path) -> dict:
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    accumulator.Reload()
    return accumulator.Tags()


def data_args(data: str, tmp_path: Path) -> list[str]:
    if data == "mnist":
        return [f"data.data_dir={make_mnist_dir(tmp_path / 'mnist')}", "data.val_size=50"]
    if data == "fashion_mnist" and not FASHION_DIR.is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist (.ci/run installs it)")
    return []


@pytest.mark.parametrize("data", ["digits", "fashion_mnist", "mnist"])
@pytest.mark.parametrize("model", ["ae", "vae"])
def test_one_epoch_leaves_metrics_checkpoints_and_image_summaries(train_cli, tmp_path, model, data):
    run_dir = tmp_path / "run"
    result = train_cli(
        f"model={model}",
        f"data={data}",
        "trainer.max_epochs=1",
        f"hydra.run.dir={run_dir}",
        *data_args(data, tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("train/loss", "val/loss", "test/loss"):
        assert isinstance(metrics[key], float) and math.isfinite(metrics[key]) and metrics[key] > 0
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "${" not in (run_dir / "config.yaml").read_text()

    images = set(tensorboard_tags(run_dir)["images"])
    assert "images/reconstructions" in images
    if model == "vae":
        assert {
            "images/samples",
            "images/latent_manifold",
            "test/kl",
            "test/recon",
        } <= images | set(metrics)


def test_default_run_checkpoint_test_metrics_and_hparams(train_cli, tmp_path):
    """The `make train` job, shortened: the test loss is that of the best checkpoint, reloadable."""
    run_dir = tmp_path / "run"
    result = train_cli("trainer.max_epochs=3", "seed=0", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # A short console: the groups chosen, the overrides, the run directory, and at the end
    # where the results are with the headline metric.
    assert "model=vae data=digits" in result.stdout and "_target_" not in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith(f"results: {run_dir}   test/loss")

    metrics = json.loads((run_dir / "metrics.json").read_text())
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["input_shape"] == [1, 8, 8]
    scores = [
        state["best_model_score"]
        for state in checkpoint["callbacks"].values()
        if "best_model_score" in state
    ]
    assert metrics["val/loss_best"] == pytest.approx(float(scores[0]))
    assert metrics["val/loss_best"] == min(metrics["val/loss"], metrics["val/loss_best"])
    model = VAE.load_from_checkpoint(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert model.latent_dim == 2

    accumulator = EventAccumulator(str(run_dir / "tensorboard"))
    accumulator.Reload()
    assert accumulator.PluginTagToContent("hparams"), "no hparams summary for TensorBoard"
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    # What tells runs apart, not the whole config (_target_s, paths, ...).
    assert set(hparams) == {"seed", "model", "data", "trainer", "accelerator", "trainer.max_epochs"}
    assert hparams["trainer.max_epochs"].number_value == 3
    assert "seed: 0" in (run_dir / "config.yaml").read_text()


@pytest.mark.parametrize("logger", ["csv", "none"])
def test_other_loggers(train_cli, tmp_path, logger):
    run_dir = tmp_path / "run"
    result = train_cli(
        f"logger={logger}", "trainer.max_epochs=1", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/loss" in json.loads((run_dir / "metrics.json").read_text())
    assert (run_dir / "csv" / "metrics.csv").is_file() == (logger == "csv")
    assert not (run_dir / "tensorboard").exists()
    if logger == "csv":
        header = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
        assert {"val/loss", "train/loss", "test/loss"} <= set(header)


def test_fast_dev_run_runs_one_batch_of_each_stage(train_cli, tmp_path):
    run_dir = tmp_path / "run"
    result = train_cli("model=ae", "trainer=fast_dev_run", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"train/loss", "val/loss", "test/loss"} <= set(metrics)
    assert not (run_dir / "checkpoints" / "best.ckpt").exists()  # tested the weights in memory


def test_console_script_from_another_directory(tmp_path):
    script = shutil.which("genlab-train", path=os.path.dirname(os.sys.executable))
    assert script, "genlab-train is not installed next to this python"
    result = subprocess.run(
        [script, "trainer=fast_dev_run", "logger=none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "outputs" / "vae_digits").iterdir())
    assert len(runs) == 1 and (runs[0] / "metrics.json").is_file()
    # Lightning's own lines reach the run's log file, not only the console.
    assert "Running in `fast_dev_run` mode" in (runs[0] / "train.log").read_text()
    assert not (REPO / "outputs" / "vae_digits" / runs[0].name).exists()
