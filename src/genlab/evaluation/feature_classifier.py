"""The classifier whose features measure FID/KID offline: a LeNet trained on the same data, once,
seeded, and cached by dataset (Inception weights cannot be fetched everywhere)."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

from genlab.data.abilities import LabelledImages
from genlab.errors import GenlabError
from genlab.nn.lenet import LeNet
from genlab.utils.cache import load_cached, save_cached
from genlab.utils.pixels import to_unit_range
from genlab.utils.progress import progress

log = logging.getLogger(__name__)


def require_classes(datamodule: object) -> LabelledImages:
    """The data, if the feature classifier can learn from it: labelled images of two classes or
    more (call after the datamodule's setup)."""
    if not isinstance(datamodule, LabelledImages):
        raise GenlabError(
            f"{type(datamodule).__name__} has no labelled images to train the FID/KID feature "
            f"classifier on: set model.eval.features=none, or inception"
        )
    if datamodule.num_classes < 2:
        raise GenlabError(
            "the data has one class (an image folder without a subfolder per class), so there is "
            "no classifier to measure FID/KID with: set model.eval.features=none, or inception"
        )
    return datamodule


def train_classifier(
    datamodule: LabelledImages, value_range, input_shape, epochs: int, seed: int
) -> tuple[LeNet, float]:
    """Adam, cross-entropy, `epochs` passes over the training split; returns the network and its
    accuracy on the whole test split. Seeded on an RNG of its own, so the run's RNG is left as it
    was whether the classifier is trained here or loaded from the cache."""
    # torch.manual_seed seeds every CUDA device too: their states are restored as well.
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(seed)
        net = LeNet(input_shape[0], datamodule.num_classes)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        for epoch in range(epochs):
            net.train()
            loader = datamodule.loader("train", shuffle=True)
            batches = progress(loader, len(loader), f"feature classifier, epoch {epoch + 1}")
            for images, labels in batches:
                # On the CPU wherever the data is held (data.on_device): the cached network, and
                # so every FID, must not depend on which device trained it first.
                images, labels = images.cpu(), labels.cpu()
                loss = F.cross_entropy(net(to_unit_range(images, value_range)), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in datamodule.loader("test", shuffle=False):
            images, labels = images.cpu(), labels.cpu()
            correct += (net(to_unit_range(images, value_range)).argmax(1) == labels).sum().item()
            total += len(labels)
    return net, correct / total


def feature_classifier(
    datamodule: object,
    value_range: tuple[float, float],
    input_shape,
    cache_dir: Path,
    epochs: int = 3,
    seed: int = 0,
    trainer: L.Trainer | None = None,
) -> tuple[LeNet, float]:
    """This dataset's cached classifier (trained, seeded, on first use) and its test accuracy.

    Under DDP (`trainer` given) rank 0 trains it while the other ranks wait, then load it.
    """
    data = require_classes(datamodule)
    name = type(data).__name__
    shape = "x".join(map(str, input_shape))
    where = hashlib.sha256(data.identity().encode()).hexdigest()[:12]
    path = Path(cache_dir) / "feature_classifiers" / f"{name}_{shape}_e{epochs}_s{seed}_{where}.pt"
    saved = load_cached(path)
    if saved is None and trainer is not None and trainer.world_size > 1:
        if trainer.is_global_zero:
            _train_and_cache(data, value_range, input_shape, epochs, seed, path)
        trainer.strategy.barrier("feature_classifier")
        saved = load_cached(path)
    if saved is None:
        return _train_and_cache(data, value_range, input_shape, epochs, seed, path)
    net = LeNet(input_shape[0], saved["num_classes"])
    # Files cached before the network was trained bare carry the LightningModule's prefix.
    net.load_state_dict({k.removeprefix("net."): v for k, v in saved["state_dict"].items()})
    return net.eval(), saved["test_acc"]


def _train_and_cache(
    datamodule: LabelledImages, value_range, input_shape, epochs: int, seed: int, path: Path
) -> tuple[LeNet, float]:
    name = type(datamodule).__name__
    log.info(
        "training the FID feature classifier for %s (%d epochs, cached for later runs)",
        name,
        epochs,
    )
    start = time.perf_counter()
    with torch.inference_mode(False), torch.enable_grad():
        net, accuracy = train_classifier(datamodule, value_range, input_shape, epochs, seed)
    log.info(
        "trained the FID feature classifier for %s in %.0f s: test accuracy %.4f",
        name,
        time.perf_counter() - start,
        accuracy,
    )
    state = {
        "state_dict": net.state_dict(),
        "num_classes": net.head.out_features,
        "test_acc": accuracy,
    }
    save_cached(state, path)
    return net, accuracy
