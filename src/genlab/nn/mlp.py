"""Multi-layer perceptron builder shared by the MLP networks."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(
    sizes: Sequence[int],
    activation: type[nn.Module] = nn.ReLU,
    final_activation: type[nn.Module] | None = None,
) -> nn.Sequential:
    """Linear layers through `sizes` with `activation` between them.

    `final_activation` follows the last layer; with a single size the result is the identity.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        last = i == len(sizes) - 2
        if not last:
            layers.append(activation())
        elif final_activation is not None:
            layers.append(final_activation())
    return nn.Sequential(*layers)
