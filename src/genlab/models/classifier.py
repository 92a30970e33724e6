"""Image classification with the LeNet-style CNN, whose features are genlab's FID/KID space."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from genlab.models.base import GenlabModule, OptimizerFactory, SchedulerFactory
from genlab.nn.lenet import LeNet
from genlab.utils.pixels import pixel_range


class Classifier(GenlabModule):
    """Cross-entropy training; logs `loss` and `acc` per stage."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int = 10,
        feature_dim: int = 128,
        value_range: Sequence[float] = (0.0, 1.0),
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.input_shape = tuple(input_shape)
        self.value_range = pixel_range(value_range)
        self.net = LeNet(self.input_shape[0], num_classes, feature_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`model(images)`: class logits (N, num_classes)."""
        return self.net(images)

    def compute_losses(self, batch, stage: str) -> dict[str, torch.Tensor]:
        images, labels = batch[0], batch[1]
        logits = self(images)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": F.cross_entropy(logits, labels), "acc": accuracy}
