"""Fashion-MNIST: MNIST's file format and sizes, clothing images instead of digits."""

from __future__ import annotations

from genlab.data.mnist import MNISTDataModule


class FashionMNISTDataModule(MNISTDataModule):
    """Also finds the files of Debian's `dataset-fashion-mnist` package."""

    title = "Fashion-MNIST"
    torchvision_name = "FashionMNIST"
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    how_to_get = " or `apt-get install dataset-fashion-mnist`"
