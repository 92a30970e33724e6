"""An exponential moving average of a network: weights and BatchNorm statistics alike."""

from __future__ import annotations

import torch
from torch import nn


def warmed_up_decay(decay: float, steps: int) -> float:
    """`decay` with a warm-up, (1 + n) / (10 + n) after n updates (as TensorFlow's
    ExponentialMovingAverage): a fixed 0.999 would still hold 12% of the random initial weights
    after 2,000 steps."""
    return min(decay, (1.0 + steps) / (10.0 + steps))


@torch.no_grad()
def update_average(average: nn.Module, current: nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * current, for every floating-point tensor of the
    state (so the average's BatchNorm statistics belong to its weights); integer counters
    (num_batches_tracked) are copied. One fused call over all tensors."""
    ema, now = average.state_dict(), current.state_dict()
    floats = [name for name, tensor in ema.items() if tensor.is_floating_point()]
    counters = [name for name in ema if name not in floats]
    torch._foreach_lerp_([ema[n] for n in floats], [now[n] for n in floats], 1.0 - decay)
    if counters:
        torch._foreach_copy_([ema[n] for n in counters], [now[n] for n in counters])
