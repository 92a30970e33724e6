"""GANs: two optimizers stepped by hand, mixed precision, resumable state, FID/KID, sampling CLI."""

from __future__ import annotations

import json
import math

import lightning as L
import numpy as np
import pytest
import torch
from conftest import quiet_trainer
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

import genlab
from genlab.cli.generate import main as generate_main
from genlab.config.compose import instantiate_data
from genlab.config.rules import rule_errors
from genlab.data.digits import DigitsDataModule
from genlab.data.image_folder import ImageFolderDataModule
from genlab.errors import GenlabError
from genlab.models.dcgan import DCGAN
from genlab.models.gan import GAN
from genlab.nn.dcgan import DCGANDiscriminator, DCGANGenerator


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


class RecordingGAN(GAN):
    """Records which network each optimizer update changed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.updates: list[tuple[str, bool, bool]] = []

    def _update(self, optimizer, loss):
        g0, d0 = flat(self.generator), flat(self.discriminator)
        super()._update(optimizer, loss)
        owner = (
            "d"
            if optimizer.optimizer.param_groups[0]["params"][0]
            is next(self.discriminator.parameters())
            else "g"
        )
        self.updates.append(
            (
                owner,
                not torch.equal(g0, flat(self.generator)),
                not torch.equal(d0, flat(self.discriminator)),
            )
        )


def quick_trainer(tmp_path, **kwargs) -> L.Trainer:
    return quiet_trainer(default_root_dir=tmp_path, **kwargs)


def test_each_player_is_updated_by_its_own_optimizer_only(tmp_path):
    torch.manual_seed(0)
    model = RecordingGAN(input_shape=(1, 8, 8), latent_dim=16, discriminator_steps=2)
    g_before, d_before = flat(model.generator), flat(model.discriminator)
    quick_trainer(tmp_path).fit(model, datamodule=DigitsDataModule(batch_size=32))
    # Per batch: two discriminator updates that leave the generator alone, then one generator
    # update that leaves the discriminator alone.
    assert model.updates == [("d", False, True), ("d", False, True), ("g", True, False)]
    assert not torch.equal(g_before, flat(model.generator))
    assert not torch.equal(d_before, flat(model.discriminator))
    assert model.trainer.global_step == 3  # Lightning counts optimizer steps, not batches


def test_weight_average_follows_the_generator_and_samples(tmp_path):
    torch.manual_seed(0)
    model = DCGAN(input_shape=(1, 8, 8), latent_dim=16, generator_width=8, ema_decay=0.75)
    start = flat(model.generator)
    assert torch.equal(flat(model.generator_ema), start)
    quick_trainer(tmp_path, limit_train_batches=2).fit(
        model, datamodule=DigitsDataModule(batch_size=32)
    )
    # Two generator updates: ema = 0.75 (0.75 start + 0.25 g1) + 0.25 g2. The optimizers
    # never touch the average; it is not g2 itself.
    assert not torch.allclose(flat(model.generator_ema), flat(model.generator))
    assert not torch.equal(flat(model.generator_ema), start)
    assert all(not p.requires_grad for p in model.generator_ema.parameters())
    for (name, average), buffer in zip(
        model.generator_ema.named_buffers(), model.generator.buffers(), strict=True
    ):
        # BatchNorm statistics are averaged like the weights; the batch counter is copied.
        assert torch.equal(average, buffer) == name.endswith("num_batches_tracked")
    z = torch.Generator().manual_seed(1)
    model.eval()
    expected = model.generator_ema(torch.randn(4, 16, generator=z))
    assert torch.equal(model.sample(4, torch.Generator().manual_seed(1)), expected)
    assert any(k.startswith("generator_ema.") for k in model.state_dict())  # in checkpoints
    assert rule_errors({"model": {"ema_decay": 1.5}}) == [
        "model.ema_decay=1.5: must be a number in (0, 1), or null"
    ]


def test_weight_average_is_the_lerp_of_the_generator_steps(monkeypatch):
    torch.manual_seed(0)
    model = DCGAN(input_shape=(1, 8, 8), latent_dim=4, generator_width=4, ema_decay=0.9)
    start = model.generator_ema.state_dict()
    start = {name: tensor.clone() for name, tensor in start.items()}
    with torch.no_grad():
        for tensor in model.generator.state_dict().values():
            tensor.add_(1)  # weights, BatchNorm statistics and the batch counter
    # Warm-up: after 0 generator steps the average moves 1 - 1/10 of the way (not 1 - 0.9).
    model._update_ema()
    for name, tensor in model.generator_ema.state_dict().items():
        moved = 1 if name.endswith("num_batches_tracked") else 0.9
        torch.testing.assert_close(tensor, start[name] + moved)
    # Two optimizer steps per batch (discriminator, generator): steps = global_step // 2.
    for global_step, decay in [(0, 0.1), (2, 2 / 11), (180, 0.9), (10**6, 0.9)]:
        monkeypatch.setattr(DCGAN, "global_step", property(lambda self, s=global_step: s))
        assert model.ema_decay_now() == pytest.approx(decay)


@pytest.mark.parametrize("model_class", [GAN, DCGAN])
def test_cpu_bf16_mixed_trains(tmp_path, model_class):
    torch.manual_seed(0)
    model = model_class(input_shape=(1, 8, 8), latent_dim=16)
    datamodule = DigitsDataModule(batch_size=16)
    before = flat(model)
    trainer = quick_trainer(tmp_path, precision="bf16-mixed", limit_train_batches=3)
    trainer.fit(model, datamodule=datamodule)
    assert math.isfinite(trainer.callback_metrics["train/loss_g"])
    assert not torch.equal(before, flat(model))


def test_checkpoint_resumes_with_both_optimizer_states(tmp_path):
    torch.manual_seed(0)
    datamodule = DigitsDataModule(batch_size=64)
    trainer = quick_trainer(tmp_path, limit_train_batches=3, enable_checkpointing=True)
    trainer.fit(GAN(input_shape=(1, 8, 8), latent_dim=16), datamodule=datamodule)
    path = tmp_path / "gan.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["optimizer_states"]
    assert len(saved) == 2 and all(s["state"][0]["step"] == 3 for s in saved)

    resumed = quick_trainer(tmp_path, max_epochs=2, limit_train_batches=3)
    model = GAN(input_shape=(1, 8, 8), latent_dim=16)
    resumed.fit(model, datamodule=datamodule, ckpt_path=path)
    steps = [opt.state_dict()["state"][0]["step"] for opt in resumed.optimizers]
    assert steps == [6, 6]  # both continued from 3: the states were restored, not restarted


def test_dcgan_is_sized_from_the_image():
    for side in (28, 32, 64):
        generator = DCGANGenerator(100, (3, side, side), width=8)
        images = generator(torch.randn(2, 100))
        assert images.shape == (2, 3, side, side) and images.abs().max() <= 1
        assert DCGANDiscriminator((3, side, side), width=8)(images).shape == (2,)
    with pytest.raises(ValueError, match="4\\*2\\^k or 7\\*2\\^k"):
        DCGANGenerator(100, (1, 30, 30))


def test_datamodule_scales_to_the_models_value_range():
    dm = DigitsDataModule(value_range=[-1, 1])
    dm.setup()
    images = dm.splits["train"].images
    assert images.min() == -1 and images.max() == 1

    # The data config takes the range the model config states: nothing asks the live model.
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="genlab.conf", version_base="1.3"):
        for model, low in (("gan", -1), ("dcgan", -1), ("vae", 0), ("ae", 0)):
            cfg = compose("train", overrides=[f"model={model}", "data=digits"])
            assert cfg.data.value_range == cfg.model.value_range
            auto = instantiate_data(cfg.data)
            auto.setup()
            assert auto.splits["val"].images.min() == low
    GlobalHydra.instance().clear()


def test_image_folder_resizes_crops_and_labels_by_subfolder(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ("cats", "dogs"):
        (tmp_path / folder).mkdir()
        for i in range(10):
            pixels = rng.integers(0, 255, size=(20 + i, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / folder / f"{i}.png")
    dm = ImageFolderDataModule(
        str(tmp_path),
        image_size=16,
        batch_size=4,
        num_workers=0,
        val_fraction=0.1,
        test_fraction=0.1,
        value_range=[-1, 1],
    )
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 16, "val": 2, "test": 2}
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    assert set(dm.splits["train"].labels) == {0, 1}
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenlabError, match="no images"):
        ImageFolderDataModule(str(tmp_path / "empty")).setup()
    Image.fromarray(pixels).save(tmp_path / "loose.png")  # beside the class folders
    with pytest.raises(GenlabError, match="1 images lie directly in .* next to class subfolders"):
        ImageFolderDataModule(str(tmp_path), image_size=16).setup()


def test_gan_run_reports_fid_kid_with_their_floor_and_caches_the_classifier(tmp_path, capfd):
    env_cache = tmp_path / "cache"
    run_dir = tmp_path / "run"
    args = ["model=gan", "trainer.max_epochs=1", f"paths.cache_dir={env_cache}", "logger=none"]
    metrics = genlab.train([*args, f"hydra.run.dir={run_dir}"])
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    for key in ("test/fid", "test/fid_floor", "test/kid", "test/kid_floor"):
        assert math.isfinite(metrics[key]), key
    # One epoch of a GAN is far from the data: its FID must be well above the real-vs-real floor.
    assert metrics["test/fid"] > 5 * metrics["test/fid_floor"]
    assert metrics["test/feature_classifier_acc"] > 0.8
    cached = list(env_cache.glob("feature_classifiers/*.pt"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns

    capfd.readouterr()
    genlab.train([*args, f"hydra.run.dir={tmp_path / 'run2'}"])
    assert cached[0].stat().st_mtime_ns == stamp  # reused, not retrained
    assert "trained the FID feature classifier" not in "".join(capfd.readouterr())

    # genlab-generate: a seeded grid of 16 8x8 samples, 4 per row, padding 2 (upscaled: none).
    out = tmp_path / "grid.png"
    generate_main([f"run_dir={run_dir}", "n=16", "nrow=4", f"out={out}"])
    assert Image.open(out).size == (4 * 10 + 2, 4 * 10 + 2)
    first = np.asarray(Image.open(out)).copy()
    generate_main([f"run_dir={run_dir}", "n=16", "nrow=4", f"out={out}"])
    assert np.array_equal(first, np.asarray(Image.open(out)))  # same seed, same grid


def test_generate_writes_a_vae_grid_and_refuses_models_that_cannot_sample(tmp_path, capsys):
    for model in ("vae", "ae"):
        run_dir = tmp_path / model
        genlab.train(
            [f"model={model}", "trainer.max_epochs=1", "logger=none", f"hydra.run.dir={run_dir}"]
        )
        capsys.readouterr()
        if model == "vae":
            generate_main([f"run_dir={run_dir}"])
            assert Image.open(run_dir / "samples.png").size == (8 * 10 + 2, 8 * 10 + 2)
        else:
            with pytest.raises(SystemExit) as exit:
                generate_main([f"run_dir={run_dir}"])
            assert exit.value.code == 2 and "cannot sample" in capsys.readouterr().err


def test_spectral_discriminator_has_no_batch_norm_and_unit_spectral_norms():
    torch.manual_seed(0)
    model = DCGAN(input_shape=(1, 28, 28), discriminator_width=8, discriminator_norm="spectral")
    discriminator = model.discriminator
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules())
    assert any(
        isinstance(m, torch.nn.BatchNorm2d) for m in DCGAN((1, 28, 28)).discriminator.modules()
    )
    for _ in range(30):  # one power iteration per training forward pass
        discriminator(torch.randn(4, 1, 28, 28))
    convs = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3
    for conv in convs:  # the weight the layer uses, as a matrix: largest singular value 1
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="'batch' or 'spectral'"):
        DCGANDiscriminator((1, 28, 28), normalization="layer")


def test_sample_grids_land_on_the_step_of_the_curves(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from genlab.callbacks.image_grids import ImageGrids

    trainer = quick_trainer(
        tmp_path,
        logger=TensorBoardLogger(tmp_path, name="tb"),
        callbacks=[ImageGrids(num_samples=4)],
        limit_train_batches=3,
        limit_val_batches=1,
        num_sanity_val_steps=0,
    )
    trainer.fit(GAN(input_shape=(1, 8, 8), latent_dim=4), datamodule=DigitsDataModule())
    assert trainer.global_step == 6  # two optimizer steps per batch
    events = EventAccumulator(str(trainer.logger.log_dir), size_guidance={"images": 0})
    events.Reload()
    [grid] = events.Images("images/samples")
    [loss] = events.Scalars("val/loss_d")
    # Lightning logs validation curves at its count of batches that stepped (2: the last batch
    # is counted after validation), not at global_step (6); the grid goes to the same point.
    assert grid.step == loss.step == 2


def test_each_rank_draws_its_own_noise():
    from types import SimpleNamespace

    model = GAN(input_shape=(1, 8, 8), latent_dim=4)
    draws, states = {}, {}
    for world_size, rank in [(1, 0), (2, 0), (2, 1)]:
        model._trainer = SimpleNamespace(world_size=world_size, global_rank=rank)
        torch.manual_seed(5)
        model._reset_eval_noise()
        draws[world_size, rank] = (model.noise(3), model.noise(3, model.noise_generator("test")))
        states[world_size, rank] = torch.get_rng_state()
    model._trainer = None
    torch.manual_seed(5)
    assert torch.equal(draws[1, 0][0], torch.randn(3, 4))  # one device: as before
    assert torch.equal(
        draws[1, 0][1], torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    )
    torch.manual_seed(5)
    world_batch = torch.randn(6, 4)  # under DDP: one world batch, a slice per rank
    assert torch.equal(draws[2, 0][0], world_batch[:3])
    assert torch.equal(draws[2, 1][0], world_batch[3:])
    assert torch.equal(states[2, 0], states[2, 1])  # ranks stay in step: resumes stay exact
    assert not torch.equal(draws[2, 0][1], draws[2, 1][1])  # evaluation samples differ too


@pytest.mark.parametrize("model_name", ["vae", "ae", "dcgan"])
def test_bf16_true_trains_and_draws_grids(tmp_path, model_name):
    from lightning.pytorch.loggers import TensorBoardLogger

    from genlab.callbacks.image_grids import ImageGrids
    from genlab.models.ae import Autoencoder
    from genlab.models.vae import VAE

    builders = {
        "vae": lambda: VAE(input_shape=(1, 8, 8)),
        "ae": lambda: Autoencoder(input_shape=(1, 8, 8)),
        "dcgan": lambda: DCGAN(input_shape=(1, 8, 8), generator_width=4, discriminator_width=4),
    }
    model = builders[model_name]()
    trainer = quick_trainer(
        tmp_path,
        precision="bf16-true",
        logger=TensorBoardLogger(tmp_path, name="tb"),
        callbacks=[ImageGrids(num_images=4, num_samples=4)],
        limit_train_batches=2,
        limit_val_batches=1,
    )
    before = flat(model).float()
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16))
    assert model.dtype == torch.bfloat16
    assert not torch.equal(before, flat(model).float())  # it trained, and drew its grids


def test_sample_scores_grow_with_the_distance_between_feature_sets():
    from genlab.evaluation.sample_quality import sample_scores

    real = torch.randn(400, 8, generator=torch.Generator().manual_seed(0))
    same = torch.randn(400, 8, generator=torch.Generator().manual_seed(1))
    near, far = sample_scores(real, same), sample_scores(real, same + 2.0)
    assert near["fid"] < 0.5 and far["fid"] > 8 * 4 - 1  # 8 features, each mean moved by 2
    assert abs(near["kid"]) < 0.05 < far["kid"]
    assert sample_scores(real, same) == near  # KID's subsets drawn the same way each time


def test_val_fid_during_training_keeps_the_best_generator(train_cli, tmp_path, monkeypatch):
    """The scores the callback logs are scripted (5, 2, 4, 3 by epoch) so that the best epoch
    is not the last; the sampling, features and logging around them are the real ones."""
    from genlab.callbacks import sample_quality

    scripted = iter([5.0, 2.0, 4.0, 3.0])
    scored = []

    def scores(real, generated):
        scored.append((len(real), len(generated)))
        return {"fid": next(scripted), "kid": 0.0}

    monkeypatch.setattr(sample_quality, "sample_scores", scores)
    run_dir = tmp_path / "run"
    result = train_cli(
        "model=gan",
        "trainer.max_epochs=4",
        "model.eval.val_every_n_epochs=1",
        "model.eval.val_samples=150",
        "callbacks.model_checkpoint.monitor=val/fid",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert scored == [(150, 150)] * 4
    assert result.stdout.count("samples against 150 validation images") == 4
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=False)
    assert best["epoch"] == 1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val/fid_best"] == 2.0 and metrics["val/fid"] == 3.0
    # Each epoch's score is on the loggers' curves (here CSV's).
    logged = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    header = logged[0].split(",")
    fids = [row.split(",")[header.index("val/fid")] for row in logged[1:]]
    assert [float(f) for f in fids if f] == [5.0, 2.0, 4.0, 3.0]


def test_a_checkpoint_on_val_fid_needs_it_measured(train_cli, tmp_path):
    result = train_cli("model=gan", "callbacks.model_checkpoint.monitor=val/fid", cwd=tmp_path)
    assert result.returncode == 2
    assert "callbacks.model_checkpoint.monitor=val/fid is measured only with" in result.stderr
