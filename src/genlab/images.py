"""Pixel value ranges: datamodules load images in [0, 1] and scale them to what the model uses
([0, 1] for the autoencoders' BCE, [-1, 1] for a GAN's Tanh); grids and feature nets undo it."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def resolve_value_range(value_range: str | Sequence[float], trainer) -> tuple[float, float]:
    """A fixed [low, high], or with "auto" the `value_range` of the model being trained."""
    if value_range == "auto":
        module = trainer.lightning_module if trainer is not None else None
        value_range = getattr(module, "value_range", (0.0, 1.0))
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
