"""VAE training: loss = reconstruction (BCE or MSE) summed over pixels + beta * KL, per example,
in nats. The network is chosen by `build_network` (the MLP here, convolutions in `ConvVAE`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from genlab.models.base import (
    GenlabModule,
    OptimizerFactory,
    SchedulerFactory,
    pixel_range_problems,
)
from genlab.nn.losses import gaussian_kl, reconstruction_loss
from genlab.nn.vae import VAENet
from genlab.utils.pixels import pixel_range


class VAE(GenlabModule):
    """The MLP VAE on images of `input_shape` (C, H, W), flattened; subclasses swap the network
    through `build_network` and `network_input` (see ConvVAE).

    Logs `loss`, `recon` and `kl` per stage. With `kl_warmup_epochs` the KL weight ramps from 0
    to `beta` during training; validation and test always use `beta`, so `val/loss` stays
    comparable across epochs.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 2,
        hidden_dims: Sequence[int] = (400,),
        beta: float = 1.0,
        kl_warmup_epochs: float = 0.0,
        value_range: Sequence[float] = (0.0, 1.0),
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        loss: str = "bce",
    ):
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.input_shape = tuple(input_shape)
        self.value_range = pixel_range(value_range)
        self.latent_dim = latent_dim
        self.beta = beta
        self.kl_warmup_epochs = kl_warmup_epochs
        self.loss_kind = loss
        self.net = self.build_network(hidden_dims)

    def build_network(self, hidden_dims: Sequence[int]) -> nn.Module:
        """The encoder/decoder pair: `encode`, `decode`, and `forward(x, generator)` giving
        (reconstruction logits, mu, logvar) for inputs shaped by `network_input`."""
        return VAENet(math.prod(self.input_shape), self.latent_dim, hidden_dims)

    def network_input(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) as the network takes them: flattened for the MLP."""
        return images.flatten(1)

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        why = "VAE computes BCE on pixels through a Sigmoid"
        return pixel_range_problems(config, (0.0, 1.0), why)

    def kl_weight(self, stage: str) -> float:
        if stage != "train" or self.kl_warmup_epochs <= 0:
            return self.beta
        epochs_done = self.trainer.fit_loop.total_batch_idx / max(
            1, self.trainer.num_training_batches
        )
        return self.beta * min(1.0, epochs_done / self.kl_warmup_epochs)

    def compute_losses(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x = self.network_input(batch[0])
        logits, mu, logvar = self.net(x, self.noise_generator(stage))
        recon = reconstruction_loss(logits, x, self.loss_kind)
        kl = gaussian_kl(mu, logvar)
        return {"loss": recon + self.kl_weight(stage) * kl, "recon": recon, "kl": kl}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`model(images)`: their reconstructions (decoded posterior means, values in [0, 1])."""
        return self.reconstruct(images)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) to the means of their posteriors q(z|x), (N, latent_dim)."""
        mu, _ = self.net.encode(self.network_input(images))
        return mu

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean: the reconstruction without sampling noise."""
        return self.decode(self.encode(images)).view_as(images)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (N, latent_dim) to images (N, C, H, W) in [0, 1]."""
        return self.net.decode(z).view(-1, *self.input_shape)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n images from the prior p(z) = N(0, I)."""
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return self.decode(z)
