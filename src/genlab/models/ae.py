"""Autoencoder training: reconstruction loss summed over pixels, per example."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from genlab.models.base import (
    GenlabModule,
    OptimizerFactory,
    SchedulerFactory,
    pixel_range_problems,
)
from genlab.nn.autoencoder import MLPAutoencoder
from genlab.nn.losses import reconstruction_loss
from genlab.utils.pixels import pixel_range


class Autoencoder(GenlabModule):
    """The MLP autoencoder on images of `input_shape` (C, H, W), flattened."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 128,
        hidden_dims: Sequence[int] = (),
        loss: str = "bce",
        value_range: Sequence[float] = (0.0, 1.0),
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.input_shape = tuple(input_shape)
        self.value_range = pixel_range(value_range)
        self.latent_dim = latent_dim
        self.loss_kind = loss
        self.net = MLPAutoencoder(math.prod(self.input_shape), latent_dim, hidden_dims)

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        why = "Autoencoder's decoder ends in a Sigmoid"
        return pixel_range_problems(config, (0.0, 1.0), why)

    def compute_losses(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x = batch[0].flatten(1)
        return {"loss": reconstruction_loss(self.net(x), x, self.loss_kind)}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`model(images)`: their reconstructions (same shape, values in [0, 1])."""
        return self.reconstruct(images)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) to their codes (N, latent_dim)."""
        return self.net.encoder(images.flatten(1))

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Images in, reconstructed images (same shape, values in [0, 1]) out."""
        return self.net.decode(self.encode(images)).view_as(images)
