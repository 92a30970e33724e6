"""Augmentation of whole training batches (`data.augment`), on the batch tensor: no PIL, no
per-sample transforms, drawn from torch's global RNG (so `seed` makes it repeat)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from genlab.errors import GenlabError
from genlab.utils.devices import to_device_async


def hflip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image of the batch (N, C, H, W) mirrored left-right with probability 1/2: one draw
    per image, `torch.rand(N) < 0.5` (from `generator`, or torch's global CPU RNG, wherever the
    images are: the same flips for images held on an accelerator)."""
    flip = to_device_async(torch.rand(len(images), generator=generator) < 0.5, images.device)
    return torch.where(flip.view(-1, *[1] * (images.ndim - 1)), images.flip(-1), images)


# Name in `data.augment` -> the operation on a batch of images. Only label- and
# distribution-preserving operations: what is applied to the real images alone is learnt by a
# generator as part of the data (a GAN would learn shifted or recoloured images).
AUGMENTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"hflip": hflip}


def check_augment(names: Sequence[str]) -> tuple[str, ...]:
    """`data.augment` as a tuple, or one error line listing the names there are."""
    names = tuple(names)
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise GenlabError(
            f"data.augment={list(names)}: unknown augmentation {', '.join(map(str, unknown))}; "
            f"the augmentations are: {', '.join(AUGMENTATIONS)} (e.g. data.augment=[hflip]), "
            f"or [] for none"
        )
    return names


class AugmentBatch:
    """collate_fn of a training loader: the batch's images augmented in order of `names`, the
    labels as they are. The batch is the dataset's own (`TensorBatches` returns whole batches),
    or `collate`'s of the samples (a dataset of files, in its DataLoader workers)."""

    def __init__(self, names: Sequence[str], collate: Callable[[list], Any] | None = None):
        self.names = check_augment(names)
        self.collate = collate

    def __call__(self, batch: Any) -> tuple[torch.Tensor, ...]:
        images, labels = self.collate(batch) if self.collate else batch
        for name in self.names:
            images = AUGMENTATIONS[name](images)
        return images, labels
