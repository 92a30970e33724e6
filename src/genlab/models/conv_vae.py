"""The convolutional VAE: the VAE's training (losses, KL warm-up, sampling) on conv networks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from genlab.models.vae import VAE
from genlab.nn.conv_vae import DEFAULT_HIDDEN_DIMS, ConvVAENet, shape_problem


class ConvVAE(VAE):
    """PyTorch-VAE's vanilla VAE on images of `input_shape` (C, H, W): `hidden_dims` are the
    encoder's widths, each halving the side (so it must be a multiple of 2**len(hidden_dims));
    every other option (beta, KL warm-up, loss, optimizer, scheduler) is the VAE's."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 128,
        hidden_dims: Sequence[int] = DEFAULT_HIDDEN_DIMS,
        **vae_options: Any,
    ):
        self.hidden_dims = tuple(hidden_dims)
        super().__init__(input_shape, latent_dim, hidden_dims, **vae_options)

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        """An image side the encoder cannot halve evenly is a data setting, refused here rather
        than as a shape error from inside the network."""
        model, data = config.get("model") or {}, config.get("data") or {}
        hidden_dims = model.get("hidden_dims", DEFAULT_HIDDEN_DIMS)
        shape = model.get("input_shape")
        problem = shape_problem(shape, hidden_dims) if shape is not None else None
        if problem is None:
            return super().config_problems(config)
        key = (
            f"data.image_size={data['image_size']}"
            if "image_size" in data
            else f"data.dims={list(data.get('dims', shape))}"
        )
        fix = "use fewer model.hidden_dims or another image size"
        return [*super().config_problems(config), f"{key}: {problem}; {fix}"]

    def build_network(self, hidden_dims: Sequence[int]) -> nn.Module:
        return ConvVAENet(self.input_shape, self.latent_dim, hidden_dims)

    def network_input(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def exported_generator(self) -> tuple[nn.Module, dict[str, Any]]:
        """The decoder, from N(0, I) latents to images in [0, 1]."""
        args = {
            "latent_dim": self.latent_dim,
            "output_shape": list(self.input_shape),
            "hidden_dims": list(self.hidden_dims),
        }
        return self.net.decoder, args
