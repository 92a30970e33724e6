"""Pixel value ranges: datamodules load images in [0, 1] and scale them to the range the model
states in its config (`model.value_range`: [0, 1] for the autoencoders' BCE, [-1, 1] for a GAN's
Tanh); grids and feature networks scale them back."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pixel_range(value_range: Sequence[float]) -> tuple[float, float]:
    """A [low, high] pair from a config as a tuple of floats."""
    low, high = value_range
    return float(low), float(high)


def from_unit_range(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """[0, 1] pixels to `value_range`."""
    low, high = value_range
    return images if (low, high) == (0.0, 1.0) else images * (high - low) + low


def to_unit_range(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Pixels in `value_range` back to [0, 1] floats (for grids and feature networks)."""
    low, high = value_range
    return (images.float() - low) / (high - low)
