"""Text for language models: tokenized once (cached on disk), cut into blocks, split in order."""

from __future__ import annotations

import glob
import hashlib
import logging
import time
import urllib.request
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from genlab.data.in_memory import TensorBatches, keep_batch
from genlab.data.splits import SplitDataModule
from genlab.errors import GenlabError
from genlab.text.tokenizer import gpt2_tokenizer, tokenizer_key
from genlab.utils.atomic import replace_atomically
from genlab.utils.cache import load_cached, save_cached

log = logging.getLogger(__name__)


class TextDataModule(SplitDataModule):
    """Local `.txt` files (a path or a glob) or, online, a Hugging Face `datasets` name.

    The files are read in sorted order and joined with the end-of-text token, tokenized with the
    model's tokenizer and cached as token ids in `cache_dir`, keyed by the text's and the
    tokenizer's hashes. The stream is cut into `block_size` blocks (labels = inputs): the first
    blocks train, the next `val_fraction` validate and the last `test_fraction` test, so the
    splits never share text. With `url` set, a missing `path` is downloaded there once.
    """

    data_kind = "token blocks"

    def __init__(
        self,
        path: str | None = None,
        dataset: str | None = None,
        dataset_config: str | None = None,
        url: str | None = None,
        tokenizer: str | None = None,
        block_size: int = 128,
        batch_size: int = 32,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        cache_dir: str = ".cache/genlab",
    ):
        super().__init__()
        self.path, self.dataset, self.dataset_config, self.url = path, dataset, dataset_config, url
        self.tokenizer_name = tokenizer
        self.block_size = block_size
        self.batch_size = batch_size
        self.fractions = (val_fraction, test_fraction)
        self.cache_dir = Path(cache_dir)
        self.splits: dict[str, TensorBatches] = {}

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        data = config.get("data") or {}
        problems = super().config_problems(config)
        if not data.get("path") and not data.get("dataset"):
            problems.append(
                "data=text needs data.path=<file.txt or glob> or data.dataset=<HF name>"
            )
        return problems

    @property
    def tokenizer(self):
        return gpt2_tokenizer(self.tokenizer_name)

    def prepare_data(self) -> None:
        if self.path and self.url and not glob.glob(self.path):
            self._download(Path(self.path))

    def _download(self, target: Path) -> None:
        try:
            replace_atomically(target, lambda tmp: urllib.request.urlretrieve(self.url, tmp))
        except OSError as err:
            raise GenlabError(
                f"{target} is missing and downloading {self.url} failed ({err}); download it by "
                f"hand and point data.path at your copy"
            ) from None

    def _read_text(self) -> str:
        if self.dataset:
            return self._read_hf_dataset()
        if Path(self.path).is_dir():
            raise GenlabError(
                f"data.path={self.path} is a folder: give a text file, or a glob of them "
                f"(data.path='{Path(self.path) / '*.txt'}')"
            )
        files = sorted(f for f in glob.glob(self.path) if Path(f).is_file())  # not folders
        if not files:
            hint = " (or set data.url to download it)" if not self.url else ""
            raise GenlabError(f"data.path={self.path}: no such file{hint}")
        texts = []
        for name in files:
            try:
                text = Path(name).read_text(encoding="utf-8")
            except UnicodeDecodeError as err:
                raise GenlabError(
                    f"{name} is not UTF-8 text (byte {err.start}); convert it"
                ) from None
            if not text.strip():
                raise GenlabError(f"{name} is empty: give a file with text in it")
            texts.append(text)
        return self.tokenizer.eos_token.join(texts)

    def _read_hf_dataset(self) -> str:
        try:
            from datasets import load_dataset
        except ImportError:
            raise GenlabError(
                "data.dataset needs the `datasets` package: pip install datasets"
            ) from None
        try:
            splits = load_dataset(self.dataset, self.dataset_config)
        except Exception as err:  # hub, network and format errors all end here
            raise GenlabError(f"cannot load data.dataset={self.dataset}: {err}") from None
        return "\n".join(
            row["text"]
            for name in ("train", "validation", "test")
            if name in splits
            for row in splits[name]
        )

    def token_ids(self) -> torch.Tensor:
        """The whole corpus as token ids, from the cache when this text and tokenizer were seen."""
        text = self._read_text()
        tokenizer = self.tokenizer
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        path = self.cache_dir / "text_tokens" / f"{digest}_{tokenizer_key(tokenizer)}.pt"
        cached = load_cached(path)
        if isinstance(cached, torch.Tensor):
            return cached
        log.info("tokenizing %.1f MB of text, once (cached in %s)", len(text) / 1e6, path.parent)
        start = time.perf_counter()
        ids = torch.tensor(tokenizer(text, verbose=False)["input_ids"], dtype=torch.int32)
        save_cached(ids, path)
        log.info("tokenized into %d tokens in %.1f s", len(ids), time.perf_counter() - start)
        return ids

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        ids = self.token_ids()
        n_blocks = len(ids) // self.block_size
        n_val, n_test = (max(1, int(n_blocks * f)) for f in self.fractions)
        if n_blocks < n_val + n_test + 1:
            raise GenlabError(
                f"the text has {len(ids)} tokens: too short for train/val/test blocks of "
                f"data.block_size={self.block_size}; give more text or a smaller block_size"
            )
        blocks = ids[: n_blocks * self.block_size].long().view(n_blocks, self.block_size)
        n_train = n_blocks - n_val - n_test
        bounds = {
            "train": (0, n_train),
            "val": (n_train, n_train + n_val),
            "test": (n_train + n_val, n_blocks),
        }
        for name, (start, end) in bounds.items():
            self.splits[name] = TensorBatches(blocks[start:end], blocks[start:end])

    def example(self, split: str = "test", index: int = 0, max_tokens: int = 32) -> dict[str, str]:
        """The first `max_tokens` tokens of a split's block `index`, as text (attention maps)."""
        self.setup()
        block = self.splits[split].images[index][:max_tokens]
        return {"text": self.tokenizer.decode(block.tolist())}

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.splits[split], batch_size=self.batch_size, shuffle=shuffle, collate_fn=keep_batch
        )
