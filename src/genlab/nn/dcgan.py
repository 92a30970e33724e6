"""The DCGAN pair (Radford et al.; the PyTorch DCGAN tutorial), sized from the image.

Images of side `base * 2**k` with base 4 (32, 64, 128 ...) or 7 (28, 56 ...): the generator
projects noise to base x base, then doubles k times with strided transposed convolutions; the
discriminator mirrors it down to base x base and a final convolution gives one logit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _plan(image_size: int) -> tuple[int, int]:
    """(base, number of doublings) for an image side, or a clear error."""
    for base in (4, 7):
        doublings = 0
        size = image_size
        while size > base and size % 2 == 0:
            size //= 2
            doublings += 1
        if size == base and doublings >= 1:
            return base, doublings
    raise ValueError(
        f"DCGAN needs square images of side 4*2^k or 7*2^k (28, 32, 64, ...), got {image_size}"
    )


def shape_problem(shape: Sequence[int]) -> str | None:
    """Why the DCGAN pair cannot take images of `shape` (channels, height, width), or None."""
    if len(shape) != 3 or shape[1] != shape[2]:
        return f"DCGAN needs square images (channels, side, side), got {list(shape)}"
    try:
        _plan(shape[2])
    except ValueError as err:
        return str(err)
    return None


def _init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), batch-norm scale N(1, 0.02), shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, output_shape: Sequence[int], width: int = 64):
        super().__init__()
        channels, height, side = output_shape
        if height != side:
            raise ValueError(f"DCGAN needs square images, got {height}x{side}")
        base, doublings = _plan(side)
        width_at = [width * 2 ** (doublings - 1 - i) for i in range(doublings)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width_at[0], base, 1, 0, bias=False),
            nn.BatchNorm2d(width_at[0]),
            nn.ReLU(True),
        ]
        for n_in, n_out in zip(width_at[:-1], width_at[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(n_in, n_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(n_out),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(width_at[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """`normalization="batch"` is the paper's (BatchNorm after every convolution but the first);
    "spectral" drops BatchNorm and bounds each convolution's spectral norm instead (Miyato et
    al. 2018), so the discriminator no longer sees real and fake batches' statistics."""

    def __init__(self, input_shape: Sequence[int], width: int = 64, normalization: str = "batch"):
        super().__init__()
        if normalization not in ("batch", "spectral"):
            raise ValueError(f"normalization must be 'batch' or 'spectral', got {normalization!r}")
        spectral = normalization == "spectral"
        channels, _, side = input_shape
        base, doublings = _plan(side)
        width_at = [width * 2**i for i in range(doublings)]
        layers: list[nn.Module] = [nn.Conv2d(channels, width_at[0], 4, 2, 1, bias=False)]
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        for n_in, n_out in zip(width_at[:-1], width_at[1:], strict=True):
            layers.append(nn.Conv2d(n_in, n_out, 4, 2, 1, bias=False))
            if not spectral:
                layers.append(nn.BatchNorm2d(n_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers.append(nn.Conv2d(width_at[-1], 1, base, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)
        if spectral:
            for layer in self.net:
                if isinstance(layer, nn.Conv2d):
                    spectral_norm(layer)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).flatten()
