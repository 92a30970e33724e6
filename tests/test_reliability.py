"""Stopping safely: SIGTERM mid-epoch resumes, Ctrl+C saves, NaN stops a run as `diverged`, and a
kill during a checkpoint write leaves the previous checkpoint whole."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
import torch
from conftest import BATCHES_PER_EPOCH, QUIET_AE, REPO, TESTS, quiet_trainer, read_json
from hydra.core.global_hydra import GlobalHydra

from genlab.callbacks.checkpoint import AtomicCheckpointIO
from genlab.cli.train import main
from genlab.data.digits import DigitsDataModule
from genlab.errors import TrainingDiverged
from genlab.models.ae import Autoencoder
from genlab.models.gan import GAN
from genlab.run.sweep import write_summary
from genlab.utils.atomic import replace_atomically

COMMON = QUIET_AE


def call_main(monkeypatch, *args: str) -> int:
    """`genlab-train ARGS` in this process; its exit code."""
    monkeypatch.setattr(sys, "argv", ["genlab-train", *args])
    GlobalHydra.instance().clear()
    try:
        main()
        return 0
    except SystemExit as exit:
        return exit.code
    finally:
        GlobalHydra.instance().clear()


def test_sigterm_mid_epoch_saves_a_checkpoint_that_resumes_to_the_end(tmp_path, monkeypatch):
    run_dir, progress = tmp_path / "run", tmp_path / "progress.txt"
    pace = f"+callbacks.pace={{_target_:pacing.Pace,progress_file:{progress}}}"
    env = {**os.environ, "PYTHONPATH": str(TESTS), "PYTHONWARNINGS": "ignore"}
    env["GENLAB_ALLOWED_TARGETS"] = "pacing."  # the test's own callback
    env.pop("HYDRA_FULL_ERROR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "genlab", *COMMON, "trainer.max_epochs=2", pace]
        + [f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (progress.is_file() and progress.read_text().startswith("1 ")):  # epoch 1 began
        assert process.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "interrupted by SIGTERM at epoch 1" in stderr
    assert f"run_dir={run_dir} ckpt_path=last" in stderr
    assert read_json(run_dir / "run.json")["status"] == "interrupted"
    assert read_json(run_dir / "metrics.json")["status"] == "interrupted"
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    done = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["completed"]
    assert checkpoint["epoch"] == 1 and 0 < done < BATCHES_PER_EPOCH  # mid-epoch
    assert checkpoint["global_step"] == BATCHES_PER_EPOCH + done

    monkeypatch.chdir(tmp_path)
    code = call_main(
        monkeypatch, *COMMON, "trainer.max_epochs=2", f"run_dir={run_dir}", "ckpt_path=last"
    )
    assert code == 0
    assert read_json(run_dir / "run.json")["status"] == "completed"
    metrics = read_json(run_dir / "metrics.json")
    assert "status" not in metrics and math.isfinite(metrics["test/loss"])
    final = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == 2 * BATCHES_PER_EPOCH  # the resumed run did the rest only


def test_ctrl_c_stops_after_the_batch_and_saves(tmp_path, monkeypatch, capfd):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("GENLAB_ALLOWED_TARGETS", "pacing.")  # the test's own callback
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    code = call_main(
        monkeypatch,
        *COMMON,
        "trainer.max_epochs=2",
        "+callbacks.ctrl_c={_target_:pacing.SignalAt,epoch:1,batch:4}",
        f"hydra.run.dir={run_dir}",
    )
    assert code == 128 + signal.SIGINT
    assert "interrupted by SIGINT at epoch 1" in capfd.readouterr().err
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == BATCHES_PER_EPOCH + 5  # batch 4 finished, then saved
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_nan_loss_stops_the_run_as_diverged_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch, capfd
):
    """A learning rate that explodes after the first epoch (a schedule a user could write)."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "sweep" / "0"
    code = call_main(
        monkeypatch,
        "model=vae",
        *COMMON[1:],
        "trainer.max_epochs=3",
        "model.scheduler={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,"
        "step_size:1,gamma:1e6}",
        f"hydra.run.dir={run_dir}",
    )
    err = capfd.readouterr().err
    assert code == 2 and "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("genlab: error:")]
    assert "train/loss became" in line and "(epoch 1)" in line
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"last good checkpoint: {last}" in line and "Lower the learning rate" in line

    assert read_json(run_dir / "run.json")["status"] == "diverged"
    assert read_json(run_dir / "metrics.json")["status"] == "diverged"
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["epoch"] == 0  # the diverged epoch was not saved over it
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())
    write_summary(run_dir.parent)
    assert "| diverged |" in (run_dir.parent / "summary.md").read_text()


def test_gan_stops_before_a_nan_reaches_its_weights(tmp_path):
    torch.manual_seed(0)
    data = DigitsDataModule(batch_size=32)
    data.setup()
    data.splits["train"].images[3:5] = float("nan")  # a broken image in the first batch
    model = GAN(input_shape=(1, 8, 8), latent_dim=8)
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    trainer = quiet_trainer(limit_train_batches=None, default_root_dir=tmp_path)
    with pytest.raises(TrainingDiverged) as diverged:
        trainer.fit(model, train_dataloaders=data.loader("train", shuffle=False))
    assert diverged.value.what == "train/loss_d" and diverged.value.step == 0
    assert "model.gradient_clip_val" in str(diverged.value)
    assert all(
        torch.equal(a, b) for a, b in zip(before, model.discriminator.parameters(), strict=True)
    )


def _models_with_fused_optimizers(kind: str):
    fused = partial(torch.optim.Adam, lr=1e-3, fused=True)
    if kind == "ae":
        return Autoencoder(input_shape=(1, 8, 8), latent_dim=8, optimizer=fused)
    return GAN(
        input_shape=(1, 8, 8),
        latent_dim=8,
        generator_optimizer=fused,
        discriminator_optimizer=fused,
    )


@pytest.mark.parametrize("kind", ["ae", "gan"])
def test_deferred_divergence_check_stops_with_the_weights_of_the_last_good_step(tmp_path, kind):
    """divergence_check_every > 1: no host read per step, yet a NaN at batch k never updates
    the weights: the run stops at the next read with the weights after batch k - 1."""
    bad_batch, batch_size = 5, 32

    def build():
        torch.manual_seed(0)
        data = DigitsDataModule(batch_size=batch_size)
        data.setup()
        if kind == "gan":  # the GAN's pixels are in [-1, 1]
            data.splits["train"].images.mul_(2).sub_(1)
        model = _models_with_fused_optimizers(kind)
        model.divergence_check_every = 4
        return data, model

    data, reference = build()
    trainer = quiet_trainer(limit_train_batches=bad_batch, default_root_dir=tmp_path)
    trainer.fit(reference, train_dataloaders=data.loader("train", shuffle=False))

    data, model = build()
    data.splits["train"].images[bad_batch * batch_size] = float("nan")  # one broken image
    trainer = quiet_trainer(limit_train_batches=None, default_root_dir=tmp_path)
    with pytest.raises(TrainingDiverged) as diverged:
        trainer.fit(model, train_dataloaders=data.loader("train", shuffle=False))
    steps_per_batch = 1 if kind == "ae" else 2  # the GAN steps D, then G
    assert diverged.value.step == bad_batch * steps_per_batch
    assert trainer.global_step > diverged.value.step  # found at a later read, not at once
    assert trainer.global_step % 4 == 0
    expected = dict(reference.named_parameters())
    for name, weight in model.named_parameters():
        assert torch.equal(weight, expected[name]), name


def test_deferred_divergence_check_needs_fused_optimizers(tmp_path, monkeypatch, capfd):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.chdir(tmp_path)
    code = call_main(monkeypatch, *COMMON, "model=gan", "divergence_check_every=10")
    err = capfd.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "model.generator_optimizer.fused=true model.discriminator_optimizer.fused=true" in err

    run_dir = tmp_path / "run"
    args = ["divergence_check_every=10", "model.optimizer.fused=true", "trainer.max_epochs=1"]
    assert call_main(monkeypatch, *COMMON, *args, f"hydra.run.dir={run_dir}") == 0
    assert read_json(run_dir / "run.json")["config"]["divergence_check_every"] == 10
    assert math.isfinite(read_json(run_dir / "metrics.json")["test/loss"])


SLOW_SAVE = """
import io, sys, time, torch
from genlab.utils.atomic import replace_atomically
from genlab.callbacks.checkpoint import AtomicCheckpointIO

writer, path = AtomicCheckpointIO(), sys.argv[1]
writer.save_checkpoint({"state_dict": {"w": torch.zeros(4)}, "epoch": 1}, path)
real_save = torch.save

def slow_save(obj, f):  # a slow disk: the kill lands in the middle of the write
    buffer = io.BytesIO()
    real_save(obj, buffer)
    data = buffer.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
    f.write(data[len(data) // 2 :])

torch.save = slow_save
writer.save_checkpoint({"state_dict": {"w": torch.ones(100_000)}, "epoch": 2}, path)
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    last = tmp_path / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVE, str(last)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "writing"
    process.kill()  # SIGKILL: no handler, no cleanup
    process.wait(timeout=30)

    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["epoch"] == 1 and torch.equal(checkpoint["state_dict"]["w"], torch.zeros(4))
    [partial] = list(last.parent.glob(".last.ckpt.*.tmp"))  # the interrupted write, beside it
    assert partial.stat().st_size > 0
    AtomicCheckpointIO().save_checkpoint({"epoch": 3}, last)  # the next save cleans up
    assert torch.load(last, weights_only=True) == {"epoch": 3}
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]


@pytest.mark.parametrize("durable", [False, True])
def test_a_failed_whole_file_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, durable):
    path = tmp_path / "runs" / "metrics.json"  # its folder is made on the way
    replace_atomically(path, lambda tmp: tmp.write_text("old"), durable=durable)

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_atomically(path, half_then_fail, durable=durable)
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]
    replace_atomically(path, lambda tmp: tmp.write_text("new"), durable=durable)
    assert path.read_text() == "new"
