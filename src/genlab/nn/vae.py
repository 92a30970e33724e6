"""The MLP variational autoencoder network (Kingma & Welling; the PyTorch example's 784-400-20)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genlab.nn.mlp import mlp


class VAENet(nn.Module):
    """Encoder to a diagonal Gaussian q(z|x), decoder to Bernoulli logits p(x|z)."""

    def __init__(self, input_dim: int, latent_dim: int = 20, hidden_dims: Sequence[int] = (400,)):
        super().__init__()
        hidden = list(hidden_dims)
        features = hidden[-1] if hidden else input_dim
        self.encoder = mlp([input_dim, *hidden], final_activation=nn.ReLU)
        self.to_mu = nn.Linear(features, latent_dim)
        self.to_logvar = nn.Linear(features, latent_dim)
        self.decoder = mlp([latent_dim, *reversed(hidden), input_dim])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + sigma * eps: the sample stays differentiable in mu and logvar."""
        std = torch.exp(0.5 * logvar)
        eps = torch.randn(std.shape, generator=generator, device=std.device, dtype=std.dtype)
        return mu + std * eps

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat input to (reconstruction logits, mu, logvar); `generator` draws the noise."""
        mu, logvar = self.encode(x)
        return self.decoder(self.reparameterize(mu, logvar, generator)), mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))
