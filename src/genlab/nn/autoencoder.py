"""The MLP autoencoder network: input -> [hidden...] -> latent -> [hidden...] -> input."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genlab.nn.mlp import mlp


class MLPAutoencoder(nn.Module):
    """Classic design: 784-128 with ReLU, then 128-784; the decoder returns logits.

    Sigmoid is applied by `decode`, so the loss can use the stable logits form.
    """

    def __init__(self, input_dim: int, latent_dim: int = 128, hidden_dims: Sequence[int] = ()):
        super().__init__()
        hidden = list(hidden_dims)
        self.encoder = mlp([input_dim, *hidden, latent_dim], final_activation=nn.ReLU)
        self.decoder = mlp([latent_dim, *reversed(hidden), input_dim])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flat input to reconstruction logits."""
        return self.decoder(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))
