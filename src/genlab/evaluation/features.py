"""The feature spaces FID and KID are measured in, for images given in a model's pixel range."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.evaluation.feature_classifier import feature_classifier
from genlab.nn.lenet import LeNet
from genlab.utils.pixels import to_unit_range

FEATURES = ("classifier", "inception", "none")


class ClassifierFeatures(nn.Module):
    """The feature classifier's penultimate features of images given in `value_range`."""

    def __init__(self, classifier: LeNet, value_range: tuple[float, float]):
        super().__init__()
        self.classifier = classifier.eval()
        self.value_range = value_range
        self.num_features = classifier.num_features

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(to_unit_range(images, self.value_range))


class InceptionFeatures(nn.Module):
    """Inception-v3 pool features (2048) of images in `value_range`, as torch-fidelity computes
    them: 3-channel uint8 input. Needs torch-fidelity and its downloaded weights."""

    num_features = 2048

    def __init__(self, value_range: tuple[float, float]):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])
        self.value_range = value_range

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = (to_unit_range(images, self.value_range).clamp(0, 1) * 255).byte()
        return self.net(pixels.expand(-1, 3, -1, -1))


def inception_features(value_range: tuple[float, float]) -> InceptionFeatures:
    try:
        return InceptionFeatures(value_range)
    except (ModuleNotFoundError, OSError, RuntimeError) as err:
        raise GenlabError(
            f"could not load Inception features for FID ({err}); they need torch-fidelity "
            f"and its weights from the internet: use model.eval.features=classifier"
        ) from None


def feature_network(
    features: str,
    datamodule: Any,
    value_range: tuple[float, float],
    input_shape,
    cache_dir: str | Path,
    classifier_epochs: int = 3,
    trainer: L.Trainer | None = None,
) -> tuple[nn.Module, dict[str, float]]:
    """The network that maps images to features, and scores that describe it (the classifier's
    test accuracy, logged beside FID so a weak feature space shows)."""
    if features == "inception":
        return inception_features(value_range), {}
    classifier, accuracy = feature_classifier(
        datamodule, value_range, input_shape, cache_dir, classifier_epochs, trainer=trainer
    )
    return ClassifierFeatures(classifier, value_range), {"feature_classifier_acc": accuracy}
