"""FID and KID of what an image model generates, scored outside the model: at test time, and
every few validation epochs if asked (to pick the best checkpoint by them)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.evaluation.feature_classifier import require_classes
from genlab.evaluation.features import feature_network
from genlab.evaluation.sample_quality import SampleQuality, sample_scores
from genlab.models.abilities import ImageModel, SamplesImages

log = logging.getLogger(__name__)
# Images sampled per call while scoring a validation epoch.
_SAMPLE_BATCH = 256


class SampleQualityMetrics(L.Callback):
    """Logs `test/fid`, `test/kid`, their floors `test/fid_floor`, `test/kid_floor` and, with the
    classifier's features, `test/feature_classifier_acc`.

    Each test batch's real images are scored against the images the model's `test_step`
    returned for it (a GAN returns its fakes). `features`: "classifier" (a LeNet genlab trains
    on the same data once and caches in `cache_dir`), "inception" (needs torch-fidelity and
    its weights) or "none". Built from a model config's `eval` block by genlab-train and
    genlab-eval.

    With `val_every_n_epochs` > 0, also `val/fid` and `val/kid` every that many validation
    epochs: `val_samples` images sampled from one fixed seed against as many validation images
    (their features computed once per run), so the scores of different epochs compare and a
    checkpoint callback can keep the best (`monitor: val/fid`).
    """

    def __init__(
        self,
        features: str = "classifier",
        classifier_epochs: int = 3,
        cache_dir: str | Path = ".cache/genlab",
        val_every_n_epochs: int = 0,
        val_samples: int = 2000,
    ):
        self.features = features
        self.classifier_epochs = classifier_epochs
        self.cache_dir = Path(cache_dir)
        self.val_every_n_epochs = val_every_n_epochs
        self.val_samples = val_samples
        self._quality: SampleQuality | None = None
        self._network: nn.Module | None = None
        self._extra: dict[str, float] = {}
        self._real_features: torch.Tensor | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Before training, not after it: data the classifier cannot learn from, or a model that
        # makes no images, is refused up front.
        if not isinstance(pl_module, ImageModel):
            raise GenlabError(
                f"{type(pl_module).__name__} makes no images to score: model.eval (FID/KID) is "
                f"for image models"
            )
        if self.val_every_n_epochs and not isinstance(pl_module, SamplesImages):
            raise GenlabError(
                f"{type(pl_module).__name__} cannot sample images: "
                f"model.eval.val_every_n_epochs is for models that generate"
            )
        if self.features == "classifier":
            require_classes(trainer.datamodule)

    def _feature_network(self, trainer: L.Trainer, pl_module: L.LightningModule) -> nn.Module:
        """Built (the classifier trained, or loaded from the cache) once per run."""
        if self._network is None:
            self._network, self._extra = feature_network(
                self.features,
                trainer.datamodule,
                pl_module.value_range,
                pl_module.input_shape,
                self.cache_dir,
                self.classifier_epochs,
                trainer=trainer,
            )
        return self._network

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        every = self.val_every_n_epochs
        if not every or trainer.sanity_checking or (trainer.current_epoch + 1) % every:
            return
        start = time.perf_counter()
        network = self._feature_network(trainer, pl_module).to(pl_module.device)
        if self._real_features is None:
            self._real_features = self._real_validation_features(trainer, network, pl_module)
        n = len(self._real_features)
        generator = torch.Generator().manual_seed(0)
        generated = []
        for start_at in range(0, n, _SAMPLE_BATCH):
            size = min(_SAMPLE_BATCH, n - start_at)
            # Inside the trainer's precision context, as the model's own steps run.
            with torch.no_grad(), trainer.precision_plugin.forward_context():
                images = pl_module.sample(size, generator=generator)
            generated.append(_features(network, images, pl_module.device))
        scores = sample_scores(self._real_features, torch.cat(generated))
        pl_module.log_dict({f"val/{name}": value for name, value in scores.items()})
        log.info(
            f"epoch {trainer.current_epoch}: val/fid {scores['fid']:.4g}, val/kid "
            f"{scores['kid']:.4g} ({n} samples against {n} validation images, "
            f"{time.perf_counter() - start:.1f} s)"
        )

    def _real_validation_features(
        self, trainer: L.Trainer, network: nn.Module, pl_module: L.LightningModule
    ) -> torch.Tensor:
        """The features of the first `val_samples` validation images, in their fixed order."""
        features, count = [], 0
        for batch in trainer.datamodule.val_dataloader():
            real = batch[0][: self.val_samples - count].to(pl_module.device)
            features.append(_features(network, real, pl_module.device))
            count += len(real)
            if count >= self.val_samples:
                break
        if count < 2:
            raise GenlabError("val/fid needs at least 2 validation images")
        return torch.cat(features)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        network = self._feature_network(trainer, pl_module)
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


def _features(network: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """In full precision, as `SampleQuality` computes them (half-precision features would change
    the scores)."""
    with torch.no_grad(), torch.autocast(torch.device(device).type, enabled=False):
        return network(images.float()).float().cpu()
