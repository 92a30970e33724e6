"""DCGAN: the GAN training of `genlab.models.gan` with the convolutional pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from genlab.models.base import OptimizerFactory
from genlab.models.gan import GAN
from genlab.nn.dcgan import DCGANDiscriminator, DCGANGenerator


class DCGAN(GAN):
    """`generator_width` / `discriminator_width` are the tutorial's ngf / ndf (64)."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 100,
        generator_width: int = 64,
        discriminator_width: int = 64,
        discriminator_steps: int = 1,
        label_smoothing: float = 0.0,
        gradient_clip_val: float | None = None,
        generator_optimizer: OptimizerFactory | None = None,
        discriminator_optimizer: OptimizerFactory | None = None,
        eval: dict[str, Any] | None = None,
    ):
        super().__init__(
            input_shape,
            latent_dim,
            generator_dims=(generator_width,),
            discriminator_dims=(discriminator_width,),
            discriminator_steps=discriminator_steps,
            label_smoothing=label_smoothing,
            gradient_clip_val=gradient_clip_val,
            generator_optimizer=generator_optimizer,
            discriminator_optimizer=discriminator_optimizer,
            eval=eval,
        )

    def build_networks(self, generator_dims, discriminator_dims) -> tuple[nn.Module, nn.Module]:
        return (
            DCGANGenerator(self.latent_dim, self.input_shape, generator_dims[0]),
            DCGANDiscriminator(self.input_shape, discriminator_dims[0]),
        )
