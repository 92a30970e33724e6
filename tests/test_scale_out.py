"""Scale-out: accelerator presets, the SLURM launcher preset, rank-0 outputs, DDP on two CPU
processes (gloo), and the GAN's gradient clipping under the 16-mixed gradient scaler."""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import REPO, quiet_trainer, run_cli
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

import genlab
from genlab.config.checks import config_errors
from genlab.config.machine import multirun_problem
from genlab.run.distributed import is_rank_zero, run_stamp

PRESETS = sorted(p.stem for p in (REPO / "conf" / "accelerator").glob("*.yaml"))
# accelerator, devices, strategy, num_nodes of each preset (fsdp's strategy is an object).
EXPECTED = {
    "auto": ("auto", 1, "auto", 1),
    "cpu": ("cpu", 1, "auto", 1),
    "gpu": ("gpu", 1, "auto", 1),
    "ddp": ("gpu", -1, "ddp", 1),
    "ddp_cpu": ("cpu", 2, "ddp", 1),
    "fsdp": ("gpu", -1, None, 1),
    "multinode": ("gpu", 8, "ddp", 2),
}


def compose_with(*overrides: str, keep_hydra: bool = True):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="genlab.conf", version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    if not keep_hydra:  # the job's config, as genlab-train sees it
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def test_every_preset_is_expected():
    assert set(PRESETS) == set(EXPECTED)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("precision", ["32-true", "16-mixed", "bf16-mixed", "bf16-true"])
def test_accelerator_preset_composes(preset, precision):
    extra = ["trainer.num_nodes=2"] if preset == "multinode" else []
    cfg = compose_with(f"accelerator={preset}", f"trainer.precision={precision}", *extra)
    trainer = cfg.trainer
    accelerator, devices, strategy, nodes = EXPECTED[preset]
    assert (trainer.accelerator, trainer.devices, trainer.num_nodes) == (
        accelerator,
        devices,
        nodes,
    )
    assert trainer.precision == precision
    if strategy is not None:
        assert trainer.strategy == strategy
    else:  # fsdp: every GPT-2 block is its own shard unit
        fsdp = instantiate(trainer.strategy)
        from transformers.models.gpt2.modeling_gpt2 import GPT2Block

        assert type(fsdp).__name__ == "FSDPStrategy"
        assert GPT2Block in fsdp.kwargs["auto_wrap_policy"]._module_classes


def test_multinode_needs_num_nodes():
    cfg = compose_with("accelerator=multinode")
    assert OmegaConf.is_missing(cfg.trainer, "num_nodes")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="ddp_cpu runs two processes")
def test_ddp_cpu_passes_the_config_checks(tmp_path):
    cfg = compose_with("accelerator=ddp_cpu", keep_hydra=False)
    assert config_errors(cfg) == []
    # 16-mixed on a CPU stays refused, with or without DDP.
    cfg = compose_with("accelerator=ddp_cpu", "trainer.precision=16-mixed", keep_hydra=False)
    assert any("16-mixed needs a CUDA GPU" in e for e in config_errors(cfg))


def test_slurm_launcher_gives_submitit_the_trainer_layout(tmp_path, monkeypatch):
    """The preset composes, and the launcher hands submitit ntasks-per-node = trainer.devices,
    the nodes, GPUs, partition and time limit; the sbatch script submitit would write has them."""
    import submitit
    from submitit.slurm.slurm import _make_sbatch_string

    fake_bin = tmp_path / "bin"  # submitit's SLURM executor insists on finding srun
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    submitted = {}

    def map_array(executor, function, *args):
        submitted.update(executor._executor.parameters)
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    cfg = compose_with(
        "hydra/launcher=slurm",
        "experiment=gpt2_finetune",
        "accelerator=multinode",
        "trainer.num_nodes=2",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=600",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    launcher.launch([["seed=1"]], initial_job_idx=0)
    assert submitted["nodes"] == 2
    assert submitted["ntasks_per_node"] == 8 == cfg.trainer.devices
    assert submitted["gpus_per_node"] == 8
    assert submitted["partition"] == "gpu"
    assert submitted["time"] == 600
    script = _make_sbatch_string(command="python -m genlab", folder=tmp_path, **submitted)
    for line in ("--nodes=2", "--ntasks-per-node=8", "--gpus-per-node=8", "--partition=gpu"):
        assert f"#SBATCH {line}\n" in script


def test_multirun_route():
    ddp_cpu = {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "num_nodes": 1}
    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    slurm = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert "hydra/launcher=slurm" in multirun_problem(ddp_cpu, basic, gpus=0)
    assert multirun_problem(ddp_cpu, slurm, gpus=0) is None
    assert multirun_problem({**ddp_cpu, "devices": 1}, basic, gpus=0) is None
    # -1 means every GPU of the node: one GPU is one process.
    gpus = {"accelerator": "gpu", "devices": -1, "strategy": "ddp", "num_nodes": 1}
    assert multirun_problem(gpus, basic, gpus=1) is None
    assert multirun_problem(gpus, basic, gpus=8) is not None


def test_multirun_with_ddp_stops_before_the_first_job(tmp_path, monkeypatch, capfd, recwarn):
    from genlab.cli.train import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    argv = ["genlab-train", "-m", "accelerator=ddp_cpu", "model.latent_dim=2,4", "logger=none"]
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exit:
        main()
    GlobalHydra.instance().clear()
    err = capfd.readouterr().err
    assert exit.value.code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert not [w for w in recwarn if "on_multirun_start" in str(w.message)]  # the check ran
    [line] = [line for line in err.splitlines() if line.startswith("genlab: error:")]
    assert "multirun (-m) with a multi-process trainer" in line
    assert "hydra/launcher=slurm" in line
    assert not list(tmp_path.glob("outputs/multiruns/*/0"))  # no job started


@pytest.mark.parametrize(
    "env, zero",
    [
        ({}, True),
        ({"LOCAL_RANK": "0", "NODE_RANK": "0"}, True),
        ({"LOCAL_RANK": "1"}, False),
        ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),  # node 1's first process
        ({"SLURM_PROCID": "3"}, False),
        ({"RANK": "2"}, False),
    ],
)
def test_rank_zero_from_the_launchers_environment(env, zero, monkeypatch, tmp_path):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_rank_zero() is zero
    from genlab.run.record import RunRecord
    from genlab.run.run_dir import RunDir

    RunRecord(OmegaConf.create({"seed": 1}), RunDir(tmp_path), [])
    assert (tmp_path / "run.json").is_file() is zero


def test_ranks_started_together_share_a_run_stamp(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_NTASKS", "16")
    assert run_stamp("%Y") == "slurm-4242"
    monkeypatch.setenv("SLURM_NTASKS", "1")  # a one-task SLURM job: the usual timestamp
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert run_stamp("%Y").isdigit()


QUIET = [
    "logger=none",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.image_grids=null",
    "callbacks.lr_monitor=null",
]


def _validate_in_one_process(run_dir: Path) -> dict[str, float]:
    """The validation metrics of the run's last checkpoint, computed by this single process."""
    model, datamodule, _ = genlab.load_run(run_dir, checkpoint="last")
    trainer = quiet_trainer(devices=1, limit_val_batches=None)
    trainer.validate(model, datamodule=datamodule, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="ddp_cpu runs two processes")
@pytest.mark.parametrize(
    "model, exact",
    [
        # VAE: the KL term is a function of the weights and the images only. val/loss and
        # val/recon also hold the reparameterization sample, which each rank draws from the same
        # seeded generator for its own examples: those agree in distribution, not in value.
        ("vae", ["val/kl"]),
        # GAN: D(x) on the real images is deterministic; the fakes come from per-rank noise.
        ("gan", ["val/d_real"]),
    ],
)
def test_ddp_cpu_trains_with_one_run_directory(model, exact, tmp_path):
    """Two processes train one epoch; rank 0's directory is the only one, its files are written
    by rank 0, and validation metrics reduced across the ranks equal those one process computes
    for the same checkpoint. 271 validation images: one rank gets an extra one, which Lightning's
    padding DistributedSampler would have duplicated and counted twice."""
    result = run_cli(
        f"model={model}",
        "accelerator=ddp_cpu",
        "data.val_fraction=0.1508",  # round(1797 * 0.1508) = 271 validation images
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3",
        "test=false",
        "paths.log_dir=out",
        *QUIET,
        cwd=tmp_path,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = list((tmp_path / "out" / f"{model}_digits").iterdir())
    assert len(run_dirs) == 1, run_dirs
    run_dir = run_dirs[0]
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"{model}_digits"]
    # Rank 1 logged to its own file in the same directory and wrote nothing else.
    assert (run_dir / "train_ddp_process_1.log").is_file()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed"
    assert not any("train_ddp_process" in arg for arg in record["command"])
    assert not list(run_dir.rglob("*.tmp"))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    single = _validate_in_one_process(run_dir)
    for name in exact:
        assert metrics[name] == pytest.approx(single[name], rel=1e-5), name


def test_gan_clips_unscaled_gradients_under_16_mixed():
    """With a gradient scaler, clipping must come after unscaling: with SGD (lr 1) and a clip
    norm of 1e-3, one discriminator update moves the weights by 1e-3 at 32-true and at 16-mixed.
    (Clipping the scaled gradients would move them 65536 times less.) 16-mixed runs on the CPU
    here through an explicit plugin; genlab-train itself refuses 16-mixed without a GPU."""
    from lightning.pytorch.plugins import MixedPrecision

    from genlab.data.digits import DigitsDataModule
    from genlab.models.gan import GAN

    def discriminator_update(plugins: list) -> float:
        L.seed_everything(0)
        sgd = partial(torch.optim.SGD, lr=1.0)
        model = GAN(
            [1, 8, 8],
            latent_dim=8,
            generator_dims=[32],
            discriminator_dims=[32],
            gradient_clip_val=1e-3,
            generator_optimizer=sgd,
            discriminator_optimizer=sgd,
        )
        before = torch.cat([p.detach().flatten() for p in model.discriminator.parameters()])
        trainer = quiet_trainer(plugins=plugins)
        trainer.fit(model, DigitsDataModule(batch_size=64))
        after = torch.cat([p.detach().flatten() for p in model.discriminator.parameters()])
        return float((after - before).norm())

    scaler = torch.amp.GradScaler("cpu")
    mixed = discriminator_update([MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    assert scaler.get_scale() > 1  # the scaler was in use
    assert discriminator_update([]) == pytest.approx(1e-3, rel=1e-3)
    assert mixed == pytest.approx(1e-3, rel=1e-2)


def test_gpu_check_script_lists_every_model_at_every_precision():
    """scripts/gpu_check.sh parses, and its jobs cover VAE, DCGAN and GPT-2 at 32-true,
    16-mixed and bf16-mixed on the GPU (the run itself needs one: docs/benchmarks.md)."""
    import subprocess

    script = REPO / "scripts" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    result = subprocess.run(
        ["bash", str(script), "--dry-run"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stderr
    jobs = [line.split(":")[0] for line in result.stdout.splitlines() if "genlab-train" in line]
    expected = [
        f"{m} {p}" for m in ("vae", "dcgan", "gpt2") for p in ("32-true", "16-mixed", "bf16-mixed")
    ]
    assert jobs == expected
    assert all("accelerator=gpu" in line for line in result.stdout.splitlines())
    assert all("limit_train_batches=300" in line for line in result.stdout.splitlines())


def test_a_split_smaller_than_the_process_count_is_refused():
    """A rank with no validation example would skip the epoch's reduction and hang the others."""
    from types import SimpleNamespace

    from genlab.data.digits import DigitsDataModule
    from genlab.errors import GenlabError

    dm = DigitsDataModule(val_fraction=0.001)  # 2 of 1,797 images
    dm.setup()
    dm.trainer = SimpleNamespace(world_size=3, global_rank=1)
    with pytest.raises(GenlabError, match="val split has 2 examples, fewer than the 3 processes"):
        dm.val_dataloader()
    assert len(dm.test_dataloader().sampler) == len(dm.splits["test"]) // 3 == 90
