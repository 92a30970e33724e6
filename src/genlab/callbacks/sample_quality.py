"""FID and KID of what an image model generates, scored at test time outside the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from genlab.errors import GenlabError
from genlab.evaluation.feature_classifier import require_classes
from genlab.evaluation.features import feature_network
from genlab.evaluation.sample_quality import SampleQuality
from genlab.models.abilities import ImageModel


class SampleQualityMetrics(L.Callback):
    """Logs `test/fid`, `test/kid`, their floors `test/fid_floor`, `test/kid_floor` and, with the
    classifier's features, `test/feature_classifier_acc`.

    Each test batch's real images are scored against the images the model's `test_step`
    returned for it (a GAN returns its fakes). `features`: "classifier" (a LeNet genlab trains
    on the same data once and caches in `cache_dir`), "inception" (needs torch-fidelity and
    its weights) or "none". Built from a model config's `eval` block by genlab-train and
    genlab-eval.
    """

    def __init__(
        self,
        features: str = "classifier",
        classifier_epochs: int = 3,
        cache_dir: str | Path = ".cache/genlab",
    ):
        self.features = features
        self.classifier_epochs = classifier_epochs
        self.cache_dir = Path(cache_dir)
        self._quality: SampleQuality | None = None
        self._extra: dict[str, float] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Before training, not after it: data the classifier cannot learn from, or a model that
        # makes no images, is refused up front.
        if not isinstance(pl_module, ImageModel):
            raise GenlabError(
                f"{type(pl_module).__name__} makes no images to score: model.eval (FID/KID) is "
                f"for image models"
            )
        if self.features == "classifier":
            require_classes(trainer.datamodule)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        network, self._extra = feature_network(
            self.features,
            trainer.datamodule,
            pl_module.value_range,
            pl_module.input_shape,
            self.cache_dir,
            self.classifier_epochs,
            trainer=trainer,
        )
        self._quality = SampleQuality(network, pl_module.device)

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(outputs, torch.Tensor):
            raise GenlabError(
                f"{type(pl_module).__name__}.test_step returns no generated images to score: "
                f"model.eval (FID/KID) needs a model whose test step returns its samples"
            )
        real = batch[0]
        self._quality.update(real, outputs[: SampleQuality.fakes_needed(len(real))])

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        scores = {**self._quality.compute(), **self._extra}
        pl_module.log_dict({f"test/{name}": value for name, value in scores.items()})
        self._quality = None
