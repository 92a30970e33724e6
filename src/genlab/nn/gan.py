"""The classic MLP GAN: generator 100-256-784 (Tanh), discriminator 784-256-1 (LeakyReLU 0.2)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class MLPGenerator(nn.Module):
    """Noise (N, latent_dim) to images (N, *output_shape) in [-1, 1]."""

    def __init__(
        self, latent_dim: int, output_shape: Sequence[int], hidden_dims: Sequence[int] = (256,)
    ):
        super().__init__()
        self.output_shape = tuple(output_shape)
        sizes = [latent_dim, *hidden_dims, math.prod(self.output_shape)]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2)]
        layers += [nn.Linear(sizes[-2], sizes[-1]), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.output_shape)


class MLPDiscriminator(nn.Module):
    """Images to one logit each: the classic net's Sigmoid output, left to BCEWithLogits."""

    def __init__(self, input_shape: Sequence[int], hidden_dims: Sequence[int] = (256,)):
        super().__init__()
        sizes = [math.prod(input_shape), *hidden_dims]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(sizes[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.flatten(1)).squeeze(1)
