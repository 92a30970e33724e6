"""The classic MLP GAN: generator 100-256-784 (Tanh), discriminator 784-256-1 (LeakyReLU 0.2)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from genlab.nn.mlp import mlp

_leaky_relu = partial(nn.LeakyReLU, 0.2)


class MLPGenerator(nn.Module):
    """Noise (N, latent_dim) to images (N, *output_shape) in [-1, 1]."""

    def __init__(
        self, latent_dim: int, output_shape: Sequence[int], hidden_dims: Sequence[int] = (256,)
    ):
        super().__init__()
        self.output_shape = tuple(output_shape)
        sizes = [latent_dim, *hidden_dims, math.prod(self.output_shape)]
        self.net = mlp(sizes, activation=_leaky_relu, final_activation=nn.Tanh)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.output_shape)


class MLPDiscriminator(nn.Module):
    """Images to one logit each: the classic net's Sigmoid output, left to BCEWithLogits."""

    def __init__(self, input_shape: Sequence[int], hidden_dims: Sequence[int] = (256,)):
        super().__init__()
        self.net = mlp([math.prod(input_shape), *hidden_dims, 1], activation=_leaky_relu)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.flatten(1)).squeeze(1)
