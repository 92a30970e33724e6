"""Per-example losses of the autoencoders, in nats (summed over pixels, averaged over the batch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(
    logits: torch.Tensor, target: torch.Tensor, kind: str = "bce"
) -> torch.Tensor:
    """Reconstruction error summed over features, averaged over the batch.

    Takes decoder logits: `bce` uses `binary_cross_entropy_with_logits`, the same maths as Sigmoid
    followed by BCE but stable and allowed under autocast; `mse` compares sigmoid(logits).
    """
    batch = target.size(0)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / batch
    if kind == "mse":
        return F.mse_loss(torch.sigmoid(logits), target, reduction="sum") / batch
    raise ValueError(f"unknown reconstruction loss {kind!r}: use 'bce' or 'mse'")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dimensions, averaged over the batch."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / mu.size(0)
