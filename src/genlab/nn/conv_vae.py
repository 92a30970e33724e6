"""The convolutional VAE network (PyTorch-VAE's "vanilla VAE"), sized from the image.

Encoder: one Conv2d(kernel 3, stride 2, padding 1) + BatchNorm + LeakyReLU per hidden width
(32-64-128-256-512), each halving the side, then linear heads to `mu` and `logvar`. Decoder: a
linear layer back to the last feature map, transposed convolutions mirroring the encoder, and a
final convolution to the image channels; a Sigmoid turns its logits into pixels in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genlab.nn.vae import VAENet

DEFAULT_HIDDEN_DIMS = (32, 64, 128, 256, 512)


def shape_problem(
    shape: Sequence[int], hidden_dims: Sequence[int] = DEFAULT_HIDDEN_DIMS
) -> str | None:
    """Why the network cannot take images of `shape` (channels, side, side), or None."""
    if len(shape) != 3 or shape[1] != shape[2]:
        return (
            f"the convolutional VAE needs square images (channels, side, side), got {list(shape)}"
        )
    if not hidden_dims:
        return "the convolutional VAE needs at least one hidden width (model.hidden_dims)"
    halvings = 2 ** len(hidden_dims)
    if shape[2] % halvings:
        return (
            f"the convolutional VAE halves the image side {len(hidden_dims)} times "
            f"(one per model.hidden_dims entry), so the side must be a multiple of {halvings}, "
            f"got {shape[2]}"
        )
    return None


def _check_shape(shape: Sequence[int], hidden_dims: Sequence[int]) -> None:
    problem = shape_problem(shape, hidden_dims)
    if problem:
        raise ValueError(problem)


def _down(n_in: int, n_out: int) -> nn.Sequential:
    """Halve the side: Conv2d(k3, s2, p1) + BatchNorm + LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(n_in, n_out, kernel_size=3, stride=2, padding=1),
        nn.BatchNorm2d(n_out),
        nn.LeakyReLU(),
    )


def _up(n_in: int, n_out: int) -> nn.Sequential:
    """Double the side: ConvTranspose2d(k3, s2, p1, output_padding 1) + BatchNorm + LeakyReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(n_in, n_out, kernel_size=3, stride=2, padding=1, output_padding=1),
        nn.BatchNorm2d(n_out),
        nn.LeakyReLU(),
    )


class ConvDecoder(nn.Module):
    """Latent codes (N, latent_dim) to images (N, C, H, W) in [0, 1]; `logits` skips the Sigmoid
    (the training loss takes logits). Stands alone: `genlab-export` writes it for VAE runs."""

    def __init__(
        self,
        latent_dim: int,
        output_shape: Sequence[int],
        hidden_dims: Sequence[int] = DEFAULT_HIDDEN_DIMS,
    ):
        super().__init__()
        _check_shape(output_shape, hidden_dims)
        channels, _, side = output_shape
        widths = list(reversed(hidden_dims))
        self.bottom_shape = (widths[0], side >> len(widths), side >> len(widths))
        self.from_latent = nn.Linear(latent_dim, widths[0] * self.bottom_shape[1] ** 2)
        self.net = nn.Sequential(
            *[_up(n_in, n_out) for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)],
            _up(widths[-1], widths[-1]),
            nn.Conv2d(widths[-1], channels, kernel_size=3, padding=1),
        )

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.from_latent(z).view(-1, *self.bottom_shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z))


class ConvVAENet(nn.Module):
    """Encoder to a diagonal Gaussian q(z|x), decoder to Bernoulli logits p(x|z), on images."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 128,
        hidden_dims: Sequence[int] = DEFAULT_HIDDEN_DIMS,
    ):
        super().__init__()
        _check_shape(input_shape, hidden_dims)
        channels, _, side = input_shape
        widths = [channels, *hidden_dims]
        self.encoder = nn.Sequential(
            *[_down(n_in, n_out) for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)],
            nn.Flatten(),
        )
        features = hidden_dims[-1] * (side >> len(hidden_dims)) ** 2
        self.to_mu = nn.Linear(features, latent_dim)
        self.to_logvar = nn.Linear(features, latent_dim)
        self.decoder = ConvDecoder(latent_dim, input_shape, hidden_dims)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images to (reconstruction logits, mu, logvar); `generator` draws the noise."""
        mu, logvar = self.encode(x)
        return self.decoder.logits(VAENet.reparameterize(mu, logvar, generator)), mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
