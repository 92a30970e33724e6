"""Autoencoder training: reconstruction loss summed over pixels, per example."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genlab.models.base import GenlabModule, OptimizerFactory, SchedulerFactory
from genlab.nn.autoencoder import MLPAutoencoder
from genlab.nn.losses import reconstruction_loss


class Autoencoder(GenlabModule):
    """The MLP autoencoder on images of `input_shape` (C, H, W), flattened."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 128,
        hidden_dims: Sequence[int] = (),
        loss: str = "bce",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        super().__init__(optimizer, scheduler)
        if loss not in ("bce", "mse"):
            raise ValueError(f"model.loss={loss!r}: use 'bce' or 'mse'")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.loss_kind = loss
        self.net = MLPAutoencoder(math.prod(self.input_shape), latent_dim, hidden_dims)

    def compute_losses(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x = batch[0].flatten(1)
        return {"loss": reconstruction_loss(self.net(x), x, self.loss_kind)}

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Images in, reconstructed images (same shape, values in [0, 1]) out."""
        return self.net.decode(self.net.encoder(images.flatten(1))).view_as(images)
