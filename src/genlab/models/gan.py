"""GAN training with two optimizers stepped by hand (Lightning manual optimization).

Each batch: `discriminator_steps` discriminator updates on real images and detached fakes, then
one generator update with the non-saturating loss. The discriminator returns logits and the
losses use BCE-with-logits (the classic Sigmoid + BCE maths, but stable, and allowed under
autocast), so the module trains under 16-mixed and bf16-mixed with Lightning's own scaler.

Counting: Lightning advances `global_step` once per optimizer step, so one batch moves it by
`discriminator_steps + 1`; `trainer.max_steps` and step-based schedules must allow for that.
Sample quality (FID/KID) is measured outside the model, by the evaluator that `model.eval`
configures (`genlab.callbacks.sample_quality`): the test step hands it the images it generated.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.base import GenlabModule, OptimizerFactory, pixel_range_problems
from genlab.nn.averaging import update_average, warmed_up_decay
from genlab.nn.gan import MLPDiscriminator, MLPGenerator
from genlab.utils.pixels import pixel_range

_DEFAULT_OPTIMIZER = partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


class GAN(GenlabModule):
    """The MLP GAN; subclasses swap the networks through `build_networks` (see DCGAN).

    `ema_decay` samples (grids, FID, genlab-generate) from an exponential moving average of the
    generator, warmed up over the first steps; `gradient_clip_val` clips both players.
    """

    checkpoint_monitor = None  # no validation loss tracks sample quality: keep the latest
    headline_metric = "fid"
    # The discriminator step leaves the generator's parameters without gradients (and the
    # generator step the discriminator's): DDP must look for unused parameters.
    ddp_find_unused_parameters = True
    num_optimizers = 2  # the generator's and the discriminator's
    progress_bar_metrics = ("loss_d", "loss_g")
    divergence_hint = (
        "Lower the learning rates (model.generator_optimizer.lr, model.discriminator_optimizer.lr) "
        "or clip gradients (model.gradient_clip_val)"
    )

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 100,
        generator_dims: Sequence[int] = (256,),
        discriminator_dims: Sequence[int] = (256,),
        discriminator_steps: int = 1,
        label_smoothing: float = 0.0,
        gradient_clip_val: float | None = None,
        ema_decay: float | None = None,
        value_range: Sequence[float] = (-1.0, 1.0),
        generator_optimizer: OptimizerFactory | None = None,
        discriminator_optimizer: OptimizerFactory | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(
            ignore=["generator_optimizer", "discriminator_optimizer"], logger=False
        )
        self.automatic_optimization = False
        self.input_shape = tuple(input_shape)
        self.value_range = pixel_range(value_range)
        self.latent_dim = latent_dim
        self.discriminator_steps = discriminator_steps
        self.label_smoothing = label_smoothing
        self.gradient_clip_val = gradient_clip_val
        self.generator_optimizer = generator_optimizer or _DEFAULT_OPTIMIZER
        self.discriminator_optimizer = discriminator_optimizer or _DEFAULT_OPTIMIZER
        self.generator_dims = tuple(generator_dims)
        self.generator, self.discriminator = self.build_networks(generator_dims, discriminator_dims)
        self.ema_decay = ema_decay
        # Trained by no optimizer; saved in checkpoints with the rest.
        self.generator_ema = (
            copy.deepcopy(self.generator).requires_grad_(False) if ema_decay else None
        )

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        return pixel_range_problems(config, (-1.0, 1.0), f"{cls.__name__}'s generator ends in Tanh")

    def build_networks(self, generator_dims, discriminator_dims) -> tuple[nn.Module, nn.Module]:
        return (
            MLPGenerator(self.latent_dim, self.input_shape, generator_dims),
            MLPDiscriminator(self.input_shape, discriminator_dims),
        )

    # The two-player game

    def training_step(self, batch, batch_idx: int) -> None:
        real = batch[0]
        opt_g, opt_d = self.optimizers()
        # toggled_optimizer freezes the other network, so each backward pass computes
        # gradients for the network being updated only.
        for _ in range(self.discriminator_steps):
            with self.toggled_optimizer(opt_d):
                with torch.no_grad():
                    fake = self.generator(self.noise(len(real)))
                metrics = self.discriminator_losses(real, fake)
                self.ensure_finite(metrics)
                self._update(opt_d, metrics["loss_d"])
        with self.toggled_optimizer(opt_g):
            loss_g = self.generator_loss(self.generator(self.noise(len(real))))
            self.ensure_finite({"loss_g": loss_g})
            self._update(opt_g, loss_g)
        if self.generator_ema is not None:
            self._update_ema()
        self.track("train", {**metrics, "loss_g": loss_g}, len(real))

    def discriminator_losses(
        self, real: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """BCE of real as real (1 - label_smoothing) and fake as fake; D(x) and D(G(z)) means."""
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        real_target = torch.full_like(d_real, 1.0 - self.label_smoothing)
        loss_d = F.binary_cross_entropy_with_logits(
            d_real, real_target
        ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        return {
            "loss_d": loss_d,
            "d_real": torch.sigmoid(d_real.detach().float()).mean(),
            "d_fake": torch.sigmoid(d_fake.detach().float()).mean(),
        }

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z)))."""
        logits = self.discriminator(fake)
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    # Validation and test: both players' losses on held-out images

    def _evaluate(self, batch, stage: str) -> torch.Tensor:
        """Log the players' losses on one batch; return the fakes it generated."""
        real = batch[0]
        fake = self.sampler(self.noise(len(real), self.noise_generator(stage)))
        metrics = self.discriminator_losses(real, fake)
        self.track(stage, {**metrics, "loss_g": self.generator_loss(fake)}, len(real))
        return fake

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        """Returns the generated images, which the sample-quality evaluator scores."""
        return self._evaluate(batch, "test")

    # Sampling

    @property
    def sampler(self) -> nn.Module:
        """The network that samples: the weight average when `ema_decay` is set."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images in [-1, 1] from N(0, I) noise (drawn on the CPU when `generator` is given)."""
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return self.sampler(z)

    def exported_generator(self) -> tuple[nn.Module, dict[str, Any]]:
        """The network that samples (the weight average with `ema_decay`) and its arguments."""
        args = {
            "latent_dim": self.latent_dim,
            "output_shape": list(self.input_shape),
            "hidden_dims": list(self.generator_dims),
        }
        return self.sampler, args

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """`model(z)`: the generator's images (values in [-1, 1]) for latents (N, latent_dim)."""
        return self.generator(z)

    # Plumbing: optimizers, noise per rank, clipping, the weight average

    def configure_optimizers(self):
        return (
            self.generator_optimizer(self.generator.parameters()),
            self.discriminator_optimizer(self.discriminator.parameters()),
        )

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n latents for this rank. From the global RNG (training), every rank draws the whole
        world's batch and keeps its own slice: ranks share one RNG state (one seed, and one
        state restored on resume), so they get different noise and resumes stay exact."""
        if generator is not None:
            return torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        world = self.trainer.world_size if self._trainer else 1
        z = torch.randn(world * n, self.latent_dim, device=self.device)
        return z[self.global_rank * n : (self.global_rank + 1) * n]

    def _update(self, optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)  # scaled by the 16-mixed gradient scaler, if any
        optimizer.step()  # unscales, calls on_before_optimizer_step, then steps

    def on_before_optimizer_step(self, optimizer) -> None:
        super().on_before_optimizer_step(optimizer)
        # Here, not before optimizer.step(): under 16-mixed the gradients are unscaled by now,
        # so the clip value means the same at every precision.
        if self.gradient_clip_val:
            self.clip_gradients(optimizer, self.gradient_clip_val, "norm")

    def ema_decay_now(self) -> float:
        """`ema_decay`, warmed up over the generator steps taken so far."""
        return warmed_up_decay(self.ema_decay, self.global_step // (self.discriminator_steps + 1))

    def _update_ema(self) -> None:
        update_average(self.generator_ema, self.generator, self.ema_decay_now())
