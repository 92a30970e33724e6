"""CIFAR-10 and CelebA: read from their published layouts (written here in small), held in
memory as uint8, CelebA decoded once and cached; batch augmentation; one line per missing or
damaged file; a DCGAN trains on each end to end."""

from __future__ import annotations

import inspect
import io
import json
import math
import pickle
import struct
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from conftest import quiet_trainer
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

import genlab.data.celeba as celeba_module
from genlab.config.rules import RULES
from genlab.data.augment import AUGMENTATIONS, AugmentBatch, hflip
from genlab.data.celeba import CelebADataModule, decode_face
from genlab.data.cifar10 import URL, CIFAR10DataModule
from genlab.data.digits import DigitsDataModule
from genlab.data.image_folder import ImageFolderDataModule
from genlab.data.in_memory import holding_device, keep_batch
from genlab.data.splits import EpochShuffle
from genlab.errors import GenlabError

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]


def cifar_batch(n: int, seed: int) -> dict:
    """A batch with what the official files hold: uint8 rows of 3072 pixels, a list of labels."""
    rng = np.random.default_rng(seed)
    return {
        "batch_label": f"training batch {seed} of 5",
        "labels": [int(x) for x in rng.integers(0, 10, n)],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{seed}_{i}.png" for i in range(n)],
    }


class Python2Pickler(pickle._Pickler):
    """Pickles as Python 2 did, which wrote the official files: texts and bytes as Python 2's
    `str` (SHORT_BINSTRING, BINSTRING), so that `encoding="bytes"` reads them back as bytes
    (b"data", b"labels") and torchvision's `encoding="latin1"` as texts."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str
    dispatch[str] = save_python2_str


def write_cifar(path: Path, batch: dict, protocol: int | None = None) -> None:
    """As the official files are (Python 2's pickle protocol 2, numpy 1's module names), or
    with Python 3's pickle of `protocol`."""
    if protocol is not None:
        path.write_bytes(pickle.dumps(batch, protocol=protocol))
        return
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(batch)
    # GLOBAL opcodes end at a newline: the module names can be rewritten in place.
    path.write_bytes(buffer.getvalue().replace(b"numpy._core.", b"numpy.core."))


def make_cifar(root: Path, n: int = 20) -> dict[str, dict]:
    """`root/cifar-10-batches-py/` with five training batches and a test batch of `n` each."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {name: cifar_batch(n, seed) for seed, name in enumerate([*TRAIN_FILES, "test_batch"])}
    for name, batch in batches.items():
        write_cifar(folder / name, batch)
    return batches


@pytest.fixture
def cifar(tmp_path) -> tuple[Path, dict[str, dict]]:
    return tmp_path / "data", make_cifar(tmp_path / "data")


def as_images(batch: dict) -> torch.Tensor:
    return torch.from_numpy(batch["data"].reshape(-1, 3, 32, 32).copy())


def rows(images: torch.Tensor) -> list[bytes]:
    return sorted(image.numpy().tobytes() for image in images)


def test_cifar10_splits_shapes_and_pixels(cifar):
    data_dir, batches = cifar
    # Written as the official files are: Python 2's strings, numpy 1's module names.
    written = (data_dir / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    assert b"numpy.core.multiarray\n_reconstruct" in written and b"U\x04data" in written
    dm = CIFAR10DataModule(data_dir=str(data_dir), val_size=10, batch_size=200)
    dm.prepare_data()
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 90, "val": 10, "test": 20}
    for split in dm.splits.values():  # held as uint8, a quarter of the memory of floats
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, 32, 32)
    assert dm.num_classes == 10

    # Train and validation are the five training batches, each image once; test is the test
    # batch in its order, each row read as the red, green and blue 32 x 32 planes.
    every = torch.cat([as_images(batches[name]) for name in TRAIN_FILES])
    held = torch.cat([dm.splits["train"].images, dm.splits["val"].images])
    assert rows(held) == rows(every)
    test = batches["test_batch"]
    assert torch.equal(dm.splits["test"].images, as_images(test))
    assert dm.splits["test"].images[3, 1, 2, 5] == test["data"][3, 1024 + 2 * 32 + 5]
    assert dm.splits["test"].labels.tolist() == test["labels"]
    assert dm.splits["test"].labels.dtype == torch.long

    # Batches are floats in [0, 1], the uint8 pixels / 255.
    x, y = next(iter(dm.test_dataloader()))
    assert x.dtype == torch.float32 and x.shape == (20, 3, 32, 32)
    assert torch.equal(x, as_images(test).float() / 255) and y.tolist() == test["labels"]


def test_cifar10_pixels_in_the_models_range(cifar):
    data_dir, batches = cifar
    dm = CIFAR10DataModule(data_dir=str(data_dir), val_size=10, value_range=(-1, 1))
    dm.setup()
    x, _ = next(iter(dm.test_dataloader()))
    expected = as_images(batches["test_batch"]).float() / 255 * 2 - 1
    assert torch.allclose(x, expected) and x.min() >= -1 and x.max() <= 1
    assert x.min() < -0.9 and x.max() > 0.9


def test_cifar10_validation_split_is_seeded(cifar):
    data_dir, _ = cifar

    def val(seed: int) -> torch.Tensor:
        dm = CIFAR10DataModule(data_dir=str(data_dir), val_size=10, split_seed=seed)
        dm.setup()
        return dm.splits["val"].images

    assert torch.equal(val(42), val(42))
    assert not torch.equal(val(42), val(7))


def test_cifar10_found_in_the_folder_itself_and_any_pickle_protocol(tmp_path):
    folder = tmp_path / "cifar"
    folder.mkdir()
    for seed, name in enumerate([*TRAIN_FILES, "test_batch"]):
        batch = {key.encode(): value for key, value in cifar_batch(4, seed).items()}
        write_cifar(folder / name, batch, protocol=5)
    dm = CIFAR10DataModule(data_dir=str(folder), val_size=2)
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 18, "val": 2, "test": 4}


def test_cifar10_missing_folder_says_where_and_how(tmp_path):
    nowhere = tmp_path / "nowhere"
    with pytest.raises(GenlabError) as err:
        CIFAR10DataModule(data_dir=str(nowhere)).setup()
    message = str(err.value)
    assert "\n" not in message
    for needle in (str(nowhere / "cifar-10-batches-py"), "data.download=true", URL, str(nowhere)):
        assert needle in message


def test_cifar10_missing_batch_is_named(cifar):
    data_dir, _ = cifar
    (data_dir / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(GenlabError) as err:
        CIFAR10DataModule(data_dir=str(data_dir)).setup()
    assert f"data_batch_3 is missing in {data_dir / 'cifar-10-batches-py'}" in str(err.value)


class RunsCode:
    """What a malicious pickle does: names a function for the unpickler to call."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("damage", ["truncated", "not_a_pickle", "wrong_shape", "runs_code"])
def test_cifar10_damaged_batch_is_named_in_one_line(cifar, tmp_path, damage):
    data_dir, batches = cifar
    path = data_dir / "cifar-10-batches-py" / "data_batch_4"
    marker = tmp_path / "code_ran"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    elif damage == "not_a_pickle":
        path.write_bytes(b"<html>404 not found</html>")
    elif damage == "wrong_shape":
        write_cifar(path, {**batches["data_batch_4"], "data": np.zeros((20, 1024), np.uint8)})
    else:
        write_cifar(path, {**batches["data_batch_4"], "extra": RunsCode(marker)}, protocol=2)
    with pytest.raises(GenlabError) as err:
        CIFAR10DataModule(data_dir=str(data_dir), val_size=10).setup()
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "data.download=true" in message
    assert not marker.exists()


# CelebA: JPEGs of 178 x 218 and the partition file, in torchvision's layout.


def face(rng: np.random.Generator) -> Image.Image:
    """A smooth random 178 x 218 image (JPEG keeps it close)."""
    coarse = rng.integers(0, 256, (7, 6, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((178, 218), Image.Resampling.BILINEAR)


def make_celeba(data_dir: Path, parts=(20, 5, 5)) -> Path:
    """`data_dir/celeba/` with img_align_celeba/000001.jpg ... and list_eval_partition.txt."""
    root = data_dir / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines, number = [], 1
    for split, count in enumerate(parts):
        for _ in range(count):
            name = f"{number:06d}.jpg"
            face(rng).save(root / "img_align_celeba" / name, quality=95)
            lines.append(f"{name} {split}")
            number += 1
    # Not in split order, as a partition file may be.
    lines = lines[1:] + lines[:1]
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def faces(tmp_path) -> tuple[Path, Path]:
    """(data_dir, cache_dir)."""
    make_celeba(tmp_path / "data")
    return tmp_path / "data", tmp_path / "cache"


def celeba(data_dir: Path, cache_dir: Path, **options) -> CelebADataModule:
    """Set up as Lightning does: prepare_data, then setup."""
    options = {"image_size": 16, "num_workers": 0, "batch_size": 64, **options}
    dm = CelebADataModule(data_dir=str(data_dir), cache_dir=str(cache_dir), **options)
    dm.prepare_data()
    dm.setup()
    return dm


def test_celeba_partition_shapes_and_pixels(faces):
    data_dir, cache_dir = faces
    dm = celeba(data_dir, cache_dir, value_range=(-1, 1))
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 20, "val": 5, "test": 5}
    for split in dm.splits.values():
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, 16, 16)
        assert split.labels.tolist() == [0] * len(split)
    assert dm.dims == (3, 16, 16) and dm.num_classes == 1

    # Each split holds the files the partition file gives it, in its order: the test split is
    # 000026.jpg .. 000030.jpg.
    folder = data_dir / "celeba" / "img_align_celeba"
    expected = torch.stack([decode_face(folder / f"{i:06d}.jpg", 16) for i in range(26, 31)])
    assert torch.equal(dm.splits["test"].images, expected)
    first_train = torch.stack([decode_face(folder / f"{i:06d}.jpg", 16) for i in (2, 3)])
    assert torch.equal(dm.splits["train"].images[:2], first_train)

    x, y = next(iter(dm.val_dataloader()))
    assert x.dtype == torch.float32 and x.shape == (5, 3, 16, 16) and y.tolist() == [0] * 5
    assert x.min() >= -1 and x.max() <= 1
    assert torch.allclose(x, dm.splits["val"].images.float() / 255 * 2 - 1)


def test_celeba_crops_the_central_square_then_resizes(tmp_path):
    """The DCGAN tutorial's crop: 178 x 178 from the middle of 178 x 218, then the resize (as
    torchvision's CenterCrop(178) and Resize on the PIL image)."""
    from torchvision import transforms

    pixels = np.zeros((218, 178, 3), np.uint8)
    pixels[:, :] = (20, 40, 230)
    pixels[:20], pixels[-20:] = (250, 10, 10), (10, 250, 10)  # outside the square
    path = tmp_path / "face.jpg"
    Image.fromarray(pixels).save(path, quality=100, subsampling=0)
    decoded = decode_face(path, 32)
    assert decoded.shape == (3, 32, 32) and decoded.dtype == torch.uint8
    blue = torch.tensor([20, 40, 230]).view(3, 1, 1)
    assert (decoded.int() - blue).abs().max() <= 12  # JPEG's error only: no red, no green

    with Image.open(path) as image:
        reference = transforms.Compose([transforms.CenterCrop(178), transforms.Resize(32)])(
            image.convert("RGB")
        )
    assert torch.equal(decoded, torch.from_numpy(np.asarray(reference).copy()).permute(2, 0, 1))


def test_celeba_is_decoded_once_then_read_from_the_cache(faces, monkeypatch):
    data_dir, cache_dir = faces
    decoded = []

    def counting(path, image_size):
        decoded.append(path.name)
        return decode_face(path, image_size)

    monkeypatch.setattr(celeba_module, "decode_face", counting)
    first = celeba(data_dir, cache_dir)
    assert len(decoded) == 30  # each file once (num_workers=0: decoded in this process)
    cached = sorted(p.name for p in (cache_dir / "celeba").iterdir())
    assert [name.split("_")[0] for name in cached] == ["test", "train", "val"]

    second = celeba(data_dir, cache_dir)
    assert len(decoded) == 30  # nothing decoded again
    for split in ("train", "val", "test"):
        assert torch.equal(second.splits[split].images, first.splits[split].images)

    # Without the JPEGs the cache still serves; another image size is another cache.
    for path in (data_dir / "celeba" / "img_align_celeba").iterdir():
        path.unlink()
    third = celeba(data_dir, cache_dir)
    assert torch.equal(third.splits["train"].images, first.splits["train"].images)
    with pytest.raises(GenlabError, match="cannot decode image|missing from"):
        celeba(data_dir, cache_dir, image_size=8)


def test_celeba_without_cache_writes_none(faces):
    data_dir, cache_dir = faces
    dm = celeba(data_dir, cache_dir, cache=False)
    assert len(dm.splits["train"]) == 20 and not cache_dir.exists()


def test_celeba_decoded_by_workers(faces):
    data_dir, cache_dir = faces
    with_workers = celeba(data_dir, cache_dir, num_workers=2, cache=False)
    here = celeba(data_dir, cache_dir, num_workers=0, cache=False)
    assert torch.equal(with_workers.splits["train"].images, here.splits["train"].images)


def test_celeba_missing_folder_says_where_to_get_it_and_where_to_put_it(tmp_path):
    data_dir = tmp_path / "data"
    with pytest.raises(GenlabError) as err:
        celeba(data_dir, tmp_path / "cache")
    message = str(err.value)
    assert "\n" not in message
    for needle in (
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
        "Align&Cropped Images",
        "Eval/list_eval_partition.txt",
        str(data_dir / "celeba" / "img_align_celeba") + "/*.jpg",
        str(data_dir / "celeba" / "list_eval_partition.txt"),
    ):
        assert needle in message


def test_celeba_missing_image_folder_is_named(faces):
    data_dir, cache_dir = faces
    folder = data_dir / "celeba" / "img_align_celeba"
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    with pytest.raises(GenlabError) as err:
        celeba(data_dir, cache_dir)
    assert f"{folder} does not exist" in str(err.value) and "Align&Cropped" in str(err.value)


def test_celeba_malformed_partition_line_is_named(faces):
    data_dir, cache_dir = faces
    partition = data_dir / "celeba" / "list_eval_partition.txt"
    partition.write_text(partition.read_text().replace("000007.jpg 0", "000007.jpg train"))
    with pytest.raises(GenlabError) as err:
        celeba(data_dir, cache_dir)
    assert f"{partition}, line 6" in str(err.value) and "000007.jpg train" in str(err.value)


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("damage", ["truncated", "not_a_jpeg"])
def test_celeba_damaged_jpeg_is_named(faces, damage, workers):
    data_dir, cache_dir = faces
    bad = data_dir / "celeba" / "img_align_celeba" / "000012.jpg"
    content = bad.read_bytes()
    bad.write_bytes(content[: len(content) // 2] if damage == "truncated" else b"not a jpeg")
    with pytest.raises(GenlabError) as err:
        celeba(data_dir, cache_dir, num_workers=workers)
    message = str(err.value)
    assert "\n" not in message and f"cannot decode image {bad}:" in message
    assert "data.on_bad_image=skip" in message


def test_celeba_damaged_jpeg_can_be_skipped(faces, caplog):
    data_dir, cache_dir = faces
    bad = data_dir / "celeba" / "img_align_celeba" / "000012.jpg"
    bad.write_bytes(b"not a jpeg")
    dm = celeba(data_dir, cache_dir, on_bad_image="skip")
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 19, "val": 5, "test": 5}
    assert "skipped 1 of 20 train images" in caplog.text and "000012.jpg" in caplog.text
    # The cache remembers the skipped file: a run that fails on bad images still fails.
    assert len(celeba(data_dir, cache_dir, on_bad_image="skip").splits["train"]) == 19
    with pytest.raises(GenlabError, match="cannot decode image"):
        celeba(data_dir, cache_dir)


def test_celeba_refuses_the_feature_classifier_up_front():
    config = {"data": {"image_size": 64}, "model": {"eval": {"features": "classifier"}}}
    [problem] = CelebADataModule.config_problems(config)
    assert "model.eval.features=classifier" in problem and "model.eval.features=none" in problem
    config["model"]["eval"]["features"] = "none"
    assert CelebADataModule.config_problems(config) == []
    config["data"]["dims"] = [3, 32, 32]
    assert "data.dims=[3, 32, 32]" in CelebADataModule.config_problems(config)[0]


# Batch augmentation.


def test_hflip_flips_the_images_its_draws_say():
    images = torch.rand(64, 3, 4, 5)
    flipped = hflip(images, torch.Generator().manual_seed(3))
    expected = torch.rand(64, generator=torch.Generator().manual_seed(3)) < 0.5
    assert 10 < expected.sum() < 54
    for i in range(64):
        assert torch.equal(flipped[i], images[i].flip(-1) if expected[i] else images[i])
    torch.manual_seed(5)  # no generator: torch's global RNG, which `seed` sets
    flipped = hflip(images)
    torch.manual_seed(5)
    expected = torch.rand(64) < 0.5
    assert all(
        torch.equal(flipped[i], images[i].flip(-1) if expected[i] else images[i]) for i in range(64)
    )


def test_hflip_of_training_batches_only(cifar):
    data_dir, _ = cifar
    dm = CIFAR10DataModule(data_dir=str(data_dir), val_size=10, batch_size=90, augment=["hflip"])
    dm.setup()
    originals = dm.splits["train"].images.float() / 255

    torch.manual_seed(11)
    images, labels = next(iter(dm.train_dataloader()))
    # The same draws from the same seed: the loader's own, then one per image; the order is
    # the epoch's permutation drawn from the run's seed.
    torch.manual_seed(11)
    order = next(iter(DataLoader(range(90), batch_size=90, sampler=EpochShuffle(90, seed=11))))
    expected = torch.rand(90) < 0.5
    assert 20 < expected.sum() < 70
    for i, index in enumerate(order.tolist()):
        original = originals[index]
        assert torch.equal(images[i], original.flip(-1) if expected[i] else original)
        assert labels[i] == dm.splits["train"].labels[index]

    torch.manual_seed(11)
    again, _ = next(iter(dm.train_dataloader()))
    assert torch.equal(again, images)

    # Validation, test and the loaders the evaluators use are never augmented.
    for seed in range(3):
        torch.manual_seed(seed)
        for split, loader in (("val", dm.val_dataloader()), ("test", dm.test_dataloader())):
            x, _ = next(iter(loader))
            assert torch.equal(x, dm.splits[split].images[: len(x)].float() / 255)
    assert dm.loader("train", shuffle=True).collate_fn is keep_batch
    assert isinstance(dm.train_dataloader().collate_fn, AugmentBatch)


# Images held in the accelerator's memory (data.on_device).

# Where the suite runs on a GPU, the images are held there. On a CPU both runs hold them in host
# memory, and this checks that on_device=true leaves the batches of a CPU run as they were.
ACCELERATOR = "cuda" if torch.cuda.is_available() else "cpu"


class RecordsBatches(L.LightningModule):
    """Keeps a host copy of every training batch it is given (and learns nothing)."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def training_step(self, batch, batch_idx):
        images, labels = batch
        self.seen.append((images.cpu(), labels.cpu()))
        return self.layer(images.mean().view(1, 1)).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def batches_seen(data_dir: Path, on_device: bool) -> tuple[list, torch.device]:
    """Two epochs of flipped CIFAR-10 pixels (uint8, converted in [-1, 1] a batch at a time):
    every batch, and where the images were held."""
    L.seed_everything(7)
    data = CIFAR10DataModule(
        data_dir=str(data_dir),
        val_size=10,
        batch_size=8,
        value_range=(-1, 1),
        augment=["hflip"],
        on_device=on_device,
    )
    model = RecordsBatches()
    trainer = quiet_trainer(accelerator=ACCELERATOR, max_epochs=2, limit_train_batches=1.0)
    trainer.fit(model, data)
    return model.seen, data.splits["train"].images.device


def test_images_held_on_the_device_give_the_batches_of_host_memory(cifar):
    data_dir, _ = cifar
    host, host_device = batches_seen(data_dir, on_device=False)
    held, held_device = batches_seen(data_dir, on_device=True)
    assert host_device.type == "cpu" and held_device.type == ACCELERATOR
    assert len(held) == len(host) == 2 * math.ceil(90 / 8)
    for (images, labels), (held_images, held_labels) in zip(host, held, strict=True):
        assert torch.equal(images, held_images) and torch.equal(labels, held_labels)
    assert host[0][0].min() == -1 and host[0][0].max() == 1
    # Each epoch has its own order.
    assert not torch.equal(host[0][1], host[len(host) // 2][1])


def test_where_in_memory_images_are_held():
    cpu, meta = torch.device("cpu"), torch.device("meta")  # meta: any accelerator
    assert holding_device("auto", cpu, 10) == cpu
    assert holding_device(True, cpu, 10) == cpu
    assert holding_device(True, meta, 10) == meta
    assert holding_device(False, meta, 10) == cpu
    assert holding_device("auto", meta, 10) == cpu  # auto measures free memory on CUDA only
    with pytest.raises(GenlabError, match="data.on_device=yes: use auto"):
        DigitsDataModule(on_device="yes")
    # The config rule (checked before anything is built) says the same.
    assert all(RULES["on_device"].accepts(v) for v in ("auto", True, False))
    assert not RULES["on_device"].accepts("yes")


def test_no_augmentation_by_default(cifar):
    data_dir, _ = cifar
    dm = CIFAR10DataModule(data_dir=str(data_dir), val_size=10, batch_size=90)
    dm.setup()
    x, _ = next(iter(dm.loader("train", shuffle=False)))
    assert dm.train_dataloader().collate_fn is keep_batch
    assert torch.equal(x, dm.splits["train"].images.float() / 255)


def test_celeba_augments_its_training_batches(faces):
    data_dir, cache_dir = faces
    dm = celeba(data_dir, cache_dir, augment=["hflip"])
    assert dm.train_dataloader().collate_fn.names == ("hflip",)
    assert dm.val_dataloader().collate_fn is keep_batch


def test_image_folder_augments_its_training_batches_in_the_workers(tmp_path):
    """Files decoded by DataLoader workers: the collated batch is flipped there, the same way
    for the same seed; validation and test batches never."""
    folder = tmp_path / "images"
    folder.mkdir()
    half = np.zeros((8, 8, 3), dtype=np.uint8)
    half[:, :4] = 255  # white left half: a flipped image is white on the right
    for i in range(40):
        Image.fromarray(half).save(folder / f"{i:02d}.png")
    options = {"path": str(folder), "image_size": 8, "batch_size": 40, "num_workers": 1}
    dm = ImageFolderDataModule(**options, augment=["hflip"])
    dm.setup()

    def flipped(images: torch.Tensor) -> torch.Tensor:
        return images[:, :, :, -1].mean(dim=(1, 2)) > 0.5

    torch.manual_seed(4)
    images, _ = next(iter(dm.train_dataloader()))
    assert 5 < flipped(images).sum() < len(images) - 5
    torch.manual_seed(4)
    again, _ = next(iter(dm.train_dataloader()))
    assert torch.equal(again, images)
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        assert not flipped(next(iter(loader))[0]).any()
    plain = ImageFolderDataModule(**options)
    plain.setup()
    assert not flipped(next(iter(plain.train_dataloader()))[0]).any()


def test_every_image_datamodule_takes_augment():
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    for name in ("digits", "mnist", "fashion_mnist", "image_folder", "cifar10", "celeba"):
        node = OmegaConf.load(Path(__file__).parents[1] / "conf" / "data" / f"{name}.yaml")
        assert node.augment == [], name
        assert "augment" in inspect.signature(get_class(node._target_)).parameters, name
    dm = DigitsDataModule(augment=["hflip"])
    dm.setup()
    assert dm.train_dataloader().collate_fn.names == ("hflip",)
    assert dm.val_dataloader().collate_fn is keep_batch


def test_unknown_augmentation_is_one_line_listing_the_known(tmp_path):
    with pytest.raises(GenlabError) as err:
        CIFAR10DataModule(data_dir=str(tmp_path), augment=["hflip", "rotate"])
    message = str(err.value)
    assert "\n" not in message and "rotate" in message and "hflip" in message
    # The config rule (checked before anything is built) knows the same names.
    assert RULES["augment"].accepts(list(AUGMENTATIONS)) and RULES["augment"].accepts([])
    assert not RULES["augment"].accepts(["rotate"]) and not RULES["augment"].accepts("hflip")
    assert all(name in RULES["augment"].allowed for name in AUGMENTATIONS)


# genlab-train end to end, on the small folders.

# The experiments' DCGAN at small widths, for one epoch.
SMALL_DCGAN = [
    "model.generator_width=8",
    "model.discriminator_width=8",
    "logger=none",
    "data.batch_size=16",
    "data.augment=[hflip]",
]


def finite_metrics(run_dir: Path) -> dict[str, float]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics and all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    return metrics


def test_experiment_dcgan_cifar10_end_to_end(train_cli, cifar, tmp_path):
    """The experiment as shipped, at small widths: val/fid every epoch picks best.ckpt, which
    is tested."""
    data_dir, _ = cifar
    run_dir = tmp_path / "run"
    result = train_cli(
        "experiment=dcgan_cifar10",
        *SMALL_DCGAN,
        "trainer.max_epochs=2",
        f"data.data_dir={data_dir}",
        "data.val_size=10",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = finite_metrics(run_dir)
    assert {"train/loss_g", "val/fid", "val/kid", "test/fid", "test/kid"} <= set(metrics)
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=False)
    (checkpointing,) = [v for v in best["callbacks"].values() if "best_model_score" in v]
    assert checkpointing["monitor"] == "val/fid"
    assert float(checkpointing["best_model_score"]) == pytest.approx(metrics["val/fid_best"])


def test_experiment_vae_celeba64_end_to_end(train_cli, faces, tmp_path):
    """PyTorch-VAE's set-up at 64x64 (its widths, MSE, the decaying learning rate), on the small
    folder; decoding fills the cache."""
    data_dir, cache_dir = faces
    run_dir = tmp_path / "run"
    result = train_cli(
        "experiment=vae_celeba64",
        "trainer.max_epochs=2",
        "logger=none",
        "data.batch_size=8",
        "data.num_workers=0",
        f"data.data_dir={data_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = finite_metrics(run_dir)
    assert {"train/loss", "val/loss", "test/loss", "test/recon", "test/kl"} <= set(metrics)
    assert len(list((cache_dir / "celeba").glob("*.pt"))) == 3
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    (scheduler,) = last["lr_schedulers"]
    # Saved at the end of epoch 2, before that epoch's step of the schedule.
    assert scheduler["_last_lr"][0] == pytest.approx(0.005 * 0.95)


def test_dcgan_trains_on_celeba(train_cli, faces, tmp_path):
    data_dir, cache_dir = faces
    run_dir = tmp_path / "run"
    result = train_cli(
        "experiment=dcgan_celeba64",
        *SMALL_DCGAN,
        "trainer.max_epochs=1",
        "data.image_size=16",
        "data.num_workers=0",
        f"data.data_dir={data_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = finite_metrics(run_dir)
    assert {"train/loss_g", "val/loss_d", "test/loss_d"} <= set(metrics)


def test_celeba_with_the_feature_classifier_is_refused_before_decoding(train_cli, faces, tmp_path):
    data_dir, cache_dir = faces
    result = train_cli(
        "model=dcgan",
        "data=celeba",
        f"data.data_dir={data_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("genlab: error: ")]
    assert len(errors) == 1 and "model.eval.features=none" in errors[0]
    assert not cache_dir.exists()


def test_cli_names_a_missing_cifar_folder_in_one_line(train_cli, tmp_path):
    result = train_cli(
        "model=dcgan",
        "data=cifar10",
        f"data.data_dir={tmp_path / 'nowhere'}",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("genlab: error: ")]
    assert (
        len(errors) == 1 and "data.download=true" in errors[0] and "Traceback" not in result.stderr
    )


def test_cifar10_download_uses_torchvision_and_lands_where_it_is_read(tmp_path, monkeypatch):
    """The real download code path, over HTTP from loopback instead of the internet: the
    archive unpacks into data_dir/cifar-10-batches-py/, where the batches are then read."""
    import functools
    import hashlib
    import http.server
    import tarfile
    import threading

    from torchvision.datasets import CIFAR10

    source = tmp_path / "mirror"
    make_cifar(source, n=4)
    folder = source / "cifar-10-batches-py"
    write_cifar(folder / "batches.meta", {"label_names": ["airplane", "automobile"]})
    archive = source / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")

    def md5(path: Path) -> str:
        return hashlib.md5(path.read_bytes()).hexdigest()

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(source))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(CIFAR10, "url", f"http://127.0.0.1:{server.server_port}/{archive.name}")
        monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive))
        monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(folder / n)] for n in TRAIN_FILES])
        monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
        monkeypatch.setitem(CIFAR10.meta, "md5", md5(folder / "batches.meta"))
        dm = CIFAR10DataModule(data_dir=str(tmp_path / "data"), download=True, val_size=2)
        dm.prepare_data()
    finally:
        server.shutdown()
    assert (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").is_file()
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 18, "val": 2, "test": 4}
