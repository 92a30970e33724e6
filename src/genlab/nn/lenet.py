"""A small LeNet-style CNN: the classifier whose features measure FID/KID offline."""

from __future__ import annotations

import torch
from torch import nn


class LeNet(nn.Module):
    """Two conv blocks, pooled to 4x4, then `feature_dim` features and class logits.

    Any image size from 8x8 up works (adaptive pooling), so one net serves digits, MNIST and
    64x64 images alike.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, feature_dim: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        self.num_features = feature_dim

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))
