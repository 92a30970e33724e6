"""The transformer recipe shared by GPT-2 and seq2seq: AdamW on matrices, warm-up then cosine."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import lightning as L
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from genlab.errors import GenlabError
from genlab.models.base import OptimizerFactory


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up from 0 to 1, then cosine decay to `min_ratio`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def decayed_warmup_cosine(
    module: L.LightningModule,
    network: nn.Module,
    optimizer_factory: OptimizerFactory,
    weight_decay: float,
    warmup_steps: int,
    min_lr_ratio: float,
) -> dict[str, Any]:
    """`configure_optimizers` output: weight decay on matrices only (not biases, norms), the
    learning rate stepped per optimizer step over `trainer.estimated_stepping_batches` (so
    `accumulate_grad_batches` and `max_steps` are accounted for)."""
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = optimizer_factory(
        [
            {"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0},
        ]
    )
    estimated = module.trainer.estimated_stepping_batches
    if not math.isfinite(estimated):
        raise GenlabError(
            "the learning-rate schedule needs a finite run: set trainer.max_epochs or "
            "trainer.max_steps (both are -1, no limit)"
        )
    total = max(1, int(estimated))
    schedule = partial(
        warmup_cosine,
        warmup_steps=min(warmup_steps, total),
        total_steps=total,
        min_ratio=min_lr_ratio,
    )
    scheduler = LambdaLR(optimizer, schedule)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
