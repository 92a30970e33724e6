"""FID and KID of generated images, in the feature space of a classifier genlab trains itself.

Inception weights cannot be fetched everywhere, so by default the features are those of a small
LeNet-style classifier trained on the same dataset, once, and cached by dataset. Scores come with
their floor: the same score between two halves of the real held-out images, which is what a
perfect generator would reach with that many samples.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from genlab.cache import load_cached, save_cached
from genlab.errors import GenlabError
from genlab.images import to_unit_range
from genlab.models.classifier import Classifier

log = logging.getLogger(__name__)


class ClassifierFeatures(nn.Module):
    """The classifier's penultimate features of images given in `value_range`."""

    def __init__(self, classifier: Classifier, value_range: tuple[float, float]):
        super().__init__()
        self.classifier = classifier.eval()
        self.value_range = value_range
        self.num_features = classifier.net.num_features

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.net.features(to_unit_range(images, self.value_range))


def _train_classifier(
    datamodule: L.LightningDataModule, value_range, input_shape, epochs: int, seed: int
) -> tuple[Classifier, float]:
    """A plain loop (a nested Trainer would disturb the one running); returns test accuracy.

    Seeded on an RNG of its own, so the run's RNG is left as it was whether the classifier is
    trained here or loaded from the cache.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Classifier(input_shape, num_classes=datamodule.num_classes)
        optimizer = model.configure_optimizers()
        for _ in range(epochs):
            model.train()
            for images, labels in datamodule.loader("train", shuffle=True):
                batch = (to_unit_range(images, value_range), labels)
                loss = model.compute_losses(batch, "train")["loss"]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        # The whole test split (test_dataloader() holds one rank's share under DDP).
        for images, targets in datamodule.loader("test", shuffle=False):
            correct += (
                (model.net(to_unit_range(images, value_range)).argmax(1) == targets).sum().item()
            )
            total += len(targets)
    return model, correct / total


def require_classes(datamodule: L.LightningDataModule) -> None:
    """The feature classifier needs labelled images of two classes or more."""
    if getattr(datamodule, "num_classes", 2) < 2:
        raise GenlabError(
            "the data has one class (an image folder without a subfolder per class), so there is "
            "no classifier to measure FID/KID with: set model.eval.features=none, or inception"
        )


def _data_key(datamodule: L.LightningDataModule) -> str:
    """Which data a classifier learnt: the datamodule's kind, where its files are and how they
    were split (two image folders of one image size must not share a classifier)."""
    where = getattr(datamodule, "path", None) or getattr(datamodule, "data_dir", None)
    parts = [
        type(datamodule).__name__,
        str(Path(where).resolve()) if where is not None else "",
        str(getattr(datamodule, "split_seed", "")),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def feature_classifier(
    datamodule: L.LightningDataModule,
    value_range: tuple[float, float],
    input_shape,
    cache_dir: Path,
    epochs: int = 3,
    seed: int = 0,
    trainer: L.Trainer | None = None,
) -> tuple[Classifier, float]:
    """This dataset's cached classifier (trained, seeded, on first use) and its test accuracy.

    Under DDP (`trainer` given) rank 0 trains it while the other ranks wait, then load it.
    """
    require_classes(datamodule)
    name = type(datamodule).__name__
    shape = "x".join(map(str, input_shape))
    key = f"{name}_{shape}_e{epochs}_s{seed}_{_data_key(datamodule)}"
    path = Path(cache_dir) / "feature_classifiers" / f"{key}.pt"
    saved = load_cached(path)
    if saved is None and trainer is not None and trainer.world_size > 1:
        if trainer.is_global_zero:
            _train_and_cache(datamodule, value_range, input_shape, epochs, seed, path)
        trainer.strategy.barrier("feature_classifier")
        saved = load_cached(path)
    if saved is not None:
        model = Classifier(input_shape, num_classes=saved["num_classes"])
        model.load_state_dict(saved["state_dict"])
        return model.eval(), saved["test_acc"]
    return _train_and_cache(datamodule, value_range, input_shape, epochs, seed, path)


def _train_and_cache(
    datamodule, value_range, input_shape, epochs: int, seed: int, path: Path
) -> tuple[Classifier, float]:
    name = type(datamodule).__name__
    start = time.perf_counter()
    with torch.inference_mode(False), torch.enable_grad():
        model, accuracy = _train_classifier(datamodule, value_range, input_shape, epochs, seed)
    log.info(
        "trained the FID feature classifier for %s in %.0f s: test accuracy %.4f",
        name,
        time.perf_counter() - start,
        accuracy,
    )
    num_classes = model.net.head.out_features
    state = {"state_dict": model.state_dict(), "num_classes": num_classes, "test_acc": accuracy}
    save_cached(state, path)
    return model, accuracy


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


class _GivenFeatures(nn.Module):
    """The feature extractor the metrics see: features are computed once per batch outside."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between two sets of features (rows), by the torchmetrics code behind `test/fid`."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_GivenFeatures(a.shape[1]))
    metric.update(a, real=True)
    metric.update(b, real=False)
    return float(metric.compute())


class SampleQuality:
    """Accumulates real and generated images over a test epoch; `compute` gives FID/KID + floors.

    Each real batch is cut in two: the first half is the reference set, the second half is
    scored against it as the floor, and as many generated images are scored as the generator.
    Each image goes through the feature network once; the four metrics share those features.
    Not an nn.Module on purpose: its feature network must not land in the model's checkpoint.
    """

    def __init__(self, features: nn.Module, device: torch.device):
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        self.features = features.to(device)
        given = _GivenFeatures(features.num_features)
        self.metrics = {
            name: metric_cls(feature=given).to(device)
            for name, metric_cls in (
                ("fid", FrechetInceptionDistance),
                ("fid_floor", FrechetInceptionDistance),
                ("kid", KernelInceptionDistance),
                ("kid_floor", KernelInceptionDistance),
            )
        }
        self.device = torch.device(device)
        self.reference_count = 0

    @staticmethod
    def fakes_needed(batch_size: int) -> int:
        """How many generated images to pass with a real batch of this size."""
        return batch_size - batch_size // 2

    def update(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        """`real`: a test batch; `fake`: `fakes_needed(len(real))` generated images."""
        half = len(real) // 2
        # In full precision: under 16-mixed / bf16-mixed autocast the features would be half
        # precision, and torchmetrics casts FID back to their dtype (KID even became NaN).
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            features = self.features(torch.cat([real, fake]).float()).float()
        reference, held_out, generated = (
            features[:half],
            features[half : len(real)],
            features[len(real) :],
        )
        for name, scored in (
            ("fid", generated),
            ("kid", generated),
            ("fid_floor", held_out),
            ("kid_floor", held_out),
        ):
            self.metrics[name].update(reference, real=True)
            self.metrics[name].update(scored, real=False)
        self.reference_count += half

    def compute(self) -> dict[str, float]:
        scores: dict[str, Any] = {}
        # KID averages over random subsets drawn from the global RNG: a seed of its own makes it
        # the same whenever a checkpoint is scored, and leaves the run's RNG alone. Subsets as
        # large as the smaller set (the reference half holds the odd image out).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            for name, metric in self.metrics.items():
                if name.startswith("kid"):
                    metric.subset_size = min(1000, self.reference_count)
                    scores[name] = float(metric.compute()[0])
                else:
                    scores[name] = float(metric.compute())
        return scores
