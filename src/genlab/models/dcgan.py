"""DCGAN: the GAN training of `genlab.models.gan` with the convolutional pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from genlab.models.gan import GAN
from genlab.nn.dcgan import DCGANDiscriminator, DCGANGenerator, shape_problem


class DCGAN(GAN):
    """`generator_width` / `discriminator_width` are the tutorial's ngf / ndf (64);
    `discriminator_norm` is "batch" (the paper) or "spectral"; every other option (steps,
    smoothing, clipping, optimizers, eval) is the GAN's."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 100,
        generator_width: int = 64,
        discriminator_width: int = 64,
        discriminator_norm: str = "batch",
        **gan_options: Any,
    ):
        self.discriminator_norm = discriminator_norm
        self.generator_width = generator_width
        super().__init__(
            input_shape,
            latent_dim,
            generator_dims=(generator_width,),
            discriminator_dims=(discriminator_width,),
            **gan_options,
        )

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        """The networks are sized from the image side: a side they cannot take is a data
        setting, refused here rather than as a traceback from inside the model."""
        model, data = config.get("model") or {}, config.get("data") or {}
        problem = shape_problem(model["input_shape"]) if "input_shape" in model else None
        if problem is None:
            return super().config_problems(config)
        key = (
            f"data.image_size={data['image_size']}"
            if "image_size" in data
            else f"data.dims={list(data.get('dims', model['input_shape']))}"
        )
        return [
            *super().config_problems(config),
            f"{key}: {problem}; model=dcgan cannot take these images",
        ]

    def exported_generator(self) -> tuple[nn.Module, dict[str, Any]]:
        args = {
            "latent_dim": self.latent_dim,
            "output_shape": list(self.input_shape),
            "width": self.generator_width,
        }
        return self.sampler, args

    def build_networks(self, generator_dims, discriminator_dims) -> tuple[nn.Module, nn.Module]:
        return (
            DCGANGenerator(self.latent_dim, self.input_shape, generator_dims[0]),
            DCGANDiscriminator(self.input_shape, discriminator_dims[0], self.discriminator_norm),
        )
