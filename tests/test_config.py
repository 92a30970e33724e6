"""Every config group option composes, and shapes flow from the datamodule into the model."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from genlab.config.compose import instantiate_model

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture
def compose_train():
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="genlab.conf", version_base="1.3"):
        yield lambda *overrides: compose(
            "train", overrides=list(overrides), return_hydra_config=True
        )
    GlobalHydra.instance().clear()


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_defaults(compose_train):
    cfg = compose_train()
    assert cfg.seed == 42 and cfg.ckpt_path is None and cfg.train and cfg.test
    assert cfg.model._target_ == "genlab.models.vae.VAE"
    assert cfg.data._target_ == "genlab.data.digits.DigitsDataModule"
    assert list(cfg.model.optimizer.keys())[:2] == ["_target_", "_partial_"]


@pytest.mark.parametrize(
    "group", ["model", "data", "trainer", "accelerator", "logger", "callbacks", "experiment"]
)
def test_every_option_composes(compose_train, group):
    names = options(group)
    assert names
    for name in names:
        cfg = compose_train(f"{group}={name}")
        assert "trainer" in cfg and "model" in cfg


def test_model_input_shape_comes_from_the_data(compose_train):
    for data, dims in (
        ("digits", [1, 8, 8]),
        ("mnist", [1, 28, 28]),
        ("fashion_mnist", [1, 28, 28]),
    ):
        cfg = compose_train("model=vae", f"data={data}")
        assert OmegaConf.to_container(cfg.model, resolve=True)["input_shape"] == dims
        model = instantiate_model(cfg.model)  # without the keys for the run (eval, compile)
        assert model.input_shape == tuple(dims)


def test_gpt2_124m_is_gpt2_small_with_the_gpu_settings(compose_train):
    cfg = compose_train("experiment=gpt2_124m")
    network = instantiate_model(cfg.model).model
    assert sum(p.numel() for p in network.parameters()) == 124_439_808  # GPT-2 small, tied
    assert network.config.n_positions == 1024
    assert network.config._attn_implementation == "sdpa"  # eager only for attention maps
    assert cfg.trainer.precision == "bf16-mixed" and cfg.model.compile and cfg.tf32
    assert cfg.model.optimizer.fused and cfg.divergence_check_every > 1


def test_seed_zero_is_kept(compose_train):
    assert compose_train("seed=0").seed == 0


def test_accelerator_presets_set_the_trainer(compose_train):
    cfg = compose_train("accelerator=ddp", "trainer.precision=bf16-mixed")
    assert (cfg.trainer.accelerator, cfg.trainer.strategy, cfg.trainer.precision) == (
        "gpu",
        "ddp",
        "bf16-mixed",
    )
    assert compose_train("accelerator=cpu").trainer.accelerator == "cpu"


def test_experiment_reference_setup(compose_train):
    cfg = compose_train("experiment=vae_fashion_mnist")
    assert cfg.data._target_.endswith("FashionMNISTDataModule")
    assert (cfg.model.latent_dim, cfg.model.hidden_dims, cfg.model.optimizer.lr) == (
        20,
        [400],
        1e-3,
    )
    assert (cfg.data.batch_size, cfg.trainer.max_epochs) == (128, 10)


def test_logger_none_drops_the_lr_monitor(compose_train):
    cfg = compose_train("logger=none")
    assert not cfg.logger and cfg.callbacks.lr_monitor is None
