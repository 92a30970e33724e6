"""FID and KID of generated images against held-out real ones, with their real-vs-real floors.

The floor is the same score between two halves of the real held-out images: what a perfect
generator would reach with that many samples.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


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


def sample_scores(real: torch.Tensor, generated: torch.Tensor) -> dict[str, float]:
    """FID and KID of generated features against a fixed set of real ones (validation-time
    scores: no floors, the real features computed once)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    given = _GivenFeatures(real.shape[1])
    fid = FrechetInceptionDistance(feature=given)
    kid = KernelInceptionDistance(feature=given, subset_size=min(1000, len(real), len(generated)))
    for metric in (fid, kid):
        metric.update(real.cpu(), real=True)
        metric.update(generated.cpu(), real=False)
    with torch.random.fork_rng(devices=[]):  # KID's subsets: the same draw every time
        torch.manual_seed(0)
        return {"fid": float(fid.compute()), "kid": float(kid.compute()[0])}


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
