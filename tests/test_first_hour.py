"""The first hour of a new user: misspelt keys named with the key meant, no leftovers, threads
that fit the machine, models that can be called, a short console, unknown words flagged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import genlab
from genlab.run.threads import busy_cores, choose_threads

FAST = ["trainer.max_epochs=1", "logger=none", "callbacks.progress_bar=null"]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("genlab: error: ")]


@pytest.mark.parametrize(
    "override, meant",
    [
        ("model.latnet_dim=4", "did you mean model.latent_dim?"),
        ("+model.latnet_dim=4", "did you mean model.latent_dim?"),
        ("trainer.max_epohcs=3", "did you mean trainer.max_epochs?"),
        ("+data.batchsize=8", "did you mean data.batch_size?"),
        ("model.optimizer.lrr=0.1", "did you mean model.optimizer.lr?"),
    ],
)
def test_a_misspelt_key_names_the_key_meant(train_cli, tmp_path, override, meant):
    result = train_cli(*FAST, override, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and meant in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*"))


def test_a_run_that_fails_before_it_saved_anything_leaves_no_directory(train_cli, tmp_path):
    """A model that cannot be built (a pretrained model that is not there) fails after the
    run has started: its directory goes, as a refused run's does."""
    args = ["model=gpt2", "data=text", f"data.path={tmp_path / 'x.txt'}"]
    (tmp_path / "x.txt").write_text("hello " * 500)
    result = train_cli(*FAST, *args, f"model.pretrained={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert result.returncode == 2 and len(error_lines(result.stderr)) == 1, result.stderr[-2000:]
    assert not any(p.is_file() for p in (tmp_path / "outputs").rglob("*"))


def test_fast_dev_run_writes_what_its_config_says(train_cli, tmp_path):
    """No checkpoint (Lightning 2.6 wrote last.ckpt); metrics.json of its one batch."""
    run_dir = tmp_path / "run"
    result = train_cli("trainer=fast_dev_run", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (run_dir / "checkpoints").exists()
    assert "test/loss" in json.loads((run_dir / "metrics.json").read_text())
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_a_sweep_prints_a_line_per_job_and_names_its_runs(train_cli, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "model=ae,vae", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}"]
    result = train_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [line for line in result.stdout.splitlines() if line.startswith("job ")]
    assert [line.split(":")[0] for line in jobs] == ["job 0", "job 1"]
    assert all("completed" in line and "test/loss" in line for line in jobs)
    assert "Epoch" not in result.stdout and "┏" not in result.stdout  # no bars, no tables
    # TensorBoard, pointed at the sweep, names each run by its overrides (not "0/tensorboard").
    runs = sorted(p.relative_to(sweep).as_posix() for p in sweep.glob("*/tensorboard/*"))
    assert runs == [
        "0/tensorboard/0_model=ae,trainer.max_epochs=1",
        "1/tensorboard/1_model=vae,trainer.max_epochs=1",
    ]


# Threads.


def threads_in(env: dict[str, str], cores: set[int] | None = None) -> int:
    """`threads=auto` in a fresh process with the given environment and affinity mask."""
    code = "from genlab.run.threads import choose_threads; print(choose_threads('auto'))"
    preexec = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        preexec_fn=preexec,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs a machine of 2 cores or more")
def test_threads_follow_the_affinity_mask_and_slurm():
    env = {"SLURM_CPUS_PER_TASK": ""}
    assert threads_in(env, cores={min(os.sched_getaffinity(0))}) == 1
    assert threads_in({"SLURM_CPUS_PER_TASK": "1"}) == 1
    assert choose_threads(3) == 3  # a number is taken as it is
    assert choose_threads("auto", processes=64) == 1  # shared among processes, at least one


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs a machine of 2 cores or more")
def test_a_core_kept_busy_is_left_out():
    core = max(os.sched_getaffinity(0))
    busy = subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )
    try:
        assert core in busy_cores([core], seconds=0.5)
    finally:
        busy.kill()
        busy.wait()


def test_the_run_record_says_how_many_threads(tmp_path):
    run_dir = tmp_path / "run"
    genlab.train([*FAST, "threads=1", f"hydra.run.dir={run_dir}"])
    assert json.loads((run_dir / "run.json").read_text())["threads"] == 1
    assert torch.get_num_threads() == 1
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))


# Models that can be called.


def test_every_model_can_be_called():
    from genlab.models.ae import Autoencoder
    from genlab.models.classifier import Classifier
    from genlab.models.dcgan import DCGAN
    from genlab.models.gpt2 import GPT2
    from genlab.models.vae import VAE

    images = torch.rand(3, 1, 8, 8)
    for model in (Autoencoder((1, 8, 8), latent_dim=4), VAE((1, 8, 8))):
        reconstructed = model.eval()(images)
        assert reconstructed.shape == images.shape and reconstructed.min() >= 0
        assert model.encode(images).shape == (3, model.latent_dim)
    assert Classifier((1, 8, 8), num_classes=10)(images).shape == (3, 10)
    gan = DCGAN((1, 8, 8), latent_dim=5, generator_width=4, discriminator_width=4).eval()
    assert gan(torch.randn(3, 5)).shape == (3, 1, 8, 8)
    gpt2 = GPT2(n_layer=1, n_head=2, n_embd=16, n_positions=16).eval()
    assert gpt2(torch.tensor([[1, 2, 3]])).shape == (1, 3, len(gpt2.tokenizer))


def test_a_seq2seq_model_can_be_called(tmp_path):
    from genlab.data.translation import TranslationDataModule
    from genlab.models.seq2seq import Seq2Seq, shift_right

    data = TranslationDataModule(task="numbers", num_examples=200, target_level="char")
    data.setup()
    model = Seq2Seq(d_model=16, n_heads=2, d_ff=32)
    model.build(data.source_vocab, data.target_vocab)
    source, target = next(iter(data.test_dataloader()))
    logits = model.eval()(source, shift_right(target, model.backend.start_id))
    assert logits.shape == (*target.shape, len(data.target_vocab))


def test_unknown_words_in_a_translation_are_named(tmp_path, caplog):
    from genlab.data.translation import TranslationDataModule
    from genlab.errors import GenlabError
    from genlab.models.seq2seq import Seq2Seq

    data = TranslationDataModule(task="numbers", num_examples=200, target_level="char")
    data.setup()
    model = Seq2Seq(d_model=16, n_heads=2, d_ff=32)
    model.build(data.source_vocab, data.target_vocab)
    with caplog.at_level("WARNING"):
        model.translate(["fourty-two thousand", "one million"])
    assert "'fourty'" in caplog.text and "'million'" in caplog.text and "'two'" not in caplog.text
    with pytest.raises(GenlabError, match="unknown word"):
        model.translate(["fourty-two"], strict=True)
    caplog.clear()
    model.translate(["forty-two"])
    assert "unknown" not in caplog.text


def test_the_readme_names_no_development_folder():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "../shared" not in readme
