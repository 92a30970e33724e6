"""GAN training with two optimizers stepped by hand (Lightning manual optimization).

Each batch: `discriminator_steps` discriminator updates on real images and detached fakes, then
one generator update with the non-saturating loss. The discriminator returns logits and the
losses use BCE-with-logits (the classic Sigmoid + BCE maths, but stable, and allowed under
autocast), so the module trains under 16-mixed and bf16-mixed with Lightning's own scaler.

Counting: Lightning advances `global_step` once per optimizer step, so one batch moves it by
`discriminator_steps + 1`; `trainer.max_steps` and step-based schedules must allow for that.
Under DDP the discriminator step leaves the generator's parameters unused (and the generator step
the discriminator's): `ddp_find_unused_parameters` makes genlab-train run `strategy=ddp` as
`ddp_find_unused_parameters_true`. Gradient clipping happens in `on_before_optimizer_step`, which
Lightning calls after the 16-mixed gradient scaler has unscaled the gradients, so the clip value
means the same at every precision.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError
from genlab.models.base import GenlabModule, OptimizerFactory
from genlab.nn.gan import MLPDiscriminator, MLPGenerator
from genlab.sample_quality import (
    ClassifierFeatures,
    SampleQuality,
    feature_classifier,
    inception_features,
    require_classes,
)

_DEFAULT_OPTIMIZER = partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


class GAN(GenlabModule):
    """The MLP GAN; subclasses swap the networks through `build_networks` (see DCGAN)."""

    checkpoint_monitor = None  # no validation loss tracks sample quality: keep the latest
    ddp_find_unused_parameters = True
    progress_bar_metrics = ("loss_d", "loss_g")
    value_range = (-1.0, 1.0)
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
        generator_optimizer: OptimizerFactory | None = None,
        discriminator_optimizer: OptimizerFactory | None = None,
        eval: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["generator_optimizer", "discriminator_optimizer"])
        self.automatic_optimization = False
        if discriminator_steps < 1:
            raise GenlabError(f"model.discriminator_steps={discriminator_steps}: must be >= 1")
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.discriminator_steps = discriminator_steps
        self.label_smoothing = label_smoothing
        self.gradient_clip_val = gradient_clip_val
        self.generator_optimizer = generator_optimizer or _DEFAULT_OPTIMIZER
        self.discriminator_optimizer = discriminator_optimizer or _DEFAULT_OPTIMIZER
        self.eval_config = dict(eval or {})
        self.generator, self.discriminator = self.build_networks(generator_dims, discriminator_dims)
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise GenlabError(f"model.ema_decay={ema_decay}: must be in (0, 1), or null for none")
        self.ema_decay = ema_decay
        # An exponential moving average of the generator's weights: what samples and FID use
        # when set. Trained by no optimizer; saved in checkpoints with the rest.
        self.generator_ema = (
            copy.deepcopy(self.generator).requires_grad_(False) if ema_decay else None
        )

    def build_networks(self, generator_dims, discriminator_dims) -> tuple[nn.Module, nn.Module]:
        return (
            MLPGenerator(self.latent_dim, self.input_shape, generator_dims),
            MLPDiscriminator(self.input_shape, discriminator_dims),
        )

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

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    @property
    def sampler(self) -> nn.Module:
        """The network that samples: the weight average when `ema_decay` is set."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images in [-1, 1] from N(0, I) noise (drawn on the CPU when `generator` is given)."""
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return self.sampler(z)

    def ema_decay_now(self) -> float:
        """`ema_decay` with a warm-up, (1 + n) / (10 + n) after n generator steps (as
        TensorFlow's ExponentialMovingAverage): a fixed 0.999 would still hold 12% of the random
        initial weights after 2,000 steps."""
        steps = self.global_step // (self.discriminator_steps + 1)
        return min(self.ema_decay, (1.0 + steps) / (10.0 + steps))

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Parameters and BatchNorm running statistics are averaged alike, so the average's
        # statistics belong to its weights (copying the generator's would not). Fused over all
        # tensors; the lists are rebuilt each call because `.to(device)` replaces buffers.
        ema, current = self.generator_ema.state_dict(), self.generator.state_dict()
        floats = [name for name, tensor in ema.items() if tensor.is_floating_point()]
        counters = [name for name in ema if name not in floats]  # num_batches_tracked
        torch._foreach_lerp_(
            [ema[n] for n in floats], [current[n] for n in floats], 1.0 - self.ema_decay_now()
        )
        if counters:
            torch._foreach_copy_([ema[n] for n in counters], [current[n] for n in counters])

    def _losses(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Discriminator loss on real vs fake (fake detached by the caller when it should be)."""
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

    def _generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z)))."""
        logits = self.discriminator(fake)
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def _update(self, optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)  # scaled by the 16-mixed gradient scaler, if any
        optimizer.step()  # unscales, calls on_before_optimizer_step, then steps

    def on_before_optimizer_step(self, optimizer) -> None:
        # Here, not before optimizer.step(): under 16-mixed the gradients are unscaled by now.
        if self.gradient_clip_val:
            self.clip_gradients(optimizer, self.gradient_clip_val, "norm")

    def training_step(self, batch, batch_idx: int) -> None:
        real = batch[0]
        opt_g, opt_d = self.optimizers()
        # toggled_optimizer freezes the other network, so each backward pass computes
        # gradients for the network being updated only.
        for _ in range(self.discriminator_steps):
            with self.toggled_optimizer(opt_d):
                with torch.no_grad():
                    fake = self.generator(self.noise(len(real)))
                metrics = self._losses(real, fake)
                self.ensure_finite(metrics)
                self._update(opt_d, metrics["loss_d"])
        with self.toggled_optimizer(opt_g):
            loss_g = self._generator_loss(self.generator(self.noise(len(real))))
            self.ensure_finite({"loss_g": loss_g})
            self._update(opt_g, loss_g)
        if self.generator_ema is not None:
            self._update_ema()
        self.track("train", {**metrics, "loss_g": loss_g}, len(real))

    def _evaluate(self, batch, stage: str) -> torch.Tensor:
        """Log the players' losses on one batch; return the fakes it generated."""
        real = batch[0]
        fake = self.sampler(self.noise(len(real), self.noise_generator(stage)))
        metrics = self._losses(real, fake)
        self.track(stage, {**metrics, "loss_g": self._generator_loss(fake)}, len(real))
        return fake

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def setup(self, stage: str) -> None:
        # Before training, not after it: data the FID classifier cannot learn from.
        if self.eval_config.get("features", "classifier") == "classifier" and self._trainer:
            require_classes(self.trainer.datamodule)

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._quality: SampleQuality | None = None
        features = self.eval_config.get("features", "classifier")
        if features in (None, "none"):
            return
        if features == "inception":
            extractor: nn.Module = inception_features(self.value_range)
        else:
            classifier, self._classifier_acc = feature_classifier(
                self.trainer.datamodule,
                self.value_range,
                self.input_shape,
                cache_dir=self.eval_config.get("cache_dir", ".cache/genlab"),
                epochs=self.eval_config.get("classifier_epochs", 3),
                trainer=self.trainer,
            )
            extractor = ClassifierFeatures(classifier.to(self.device), self.value_range)
        self._quality = SampleQuality(extractor, self.device)

    def test_step(self, batch, batch_idx: int) -> None:
        fake = self._evaluate(batch, "test")
        if self._quality is not None:
            real = batch[0]
            self._quality.update(real, fake[: SampleQuality.fakes_needed(len(real))])

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self._quality is not None:
            scores = {f"test/{name}": value for name, value in self._quality.compute().items()}
            if self.eval_config.get("features", "classifier") == "classifier":
                scores["test/feature_classifier_acc"] = self._classifier_acc
            self.log_dict(scores)
            self._quality = None
