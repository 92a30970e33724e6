"""Text for language models: tokenized once into a token file, split in order, read as windows."""

from __future__ import annotations

import glob
import logging
import os
import urllib.request
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from genlab.data.in_memory import keep_batch
from genlab.data.splits import SplitDataModule
from genlab.data.text_source import HubText, TextFiles
from genlab.data.token_cache import TokenFile, cached_characters, token_dtype, token_file
from genlab.data.token_windows import RandomWindows, TokenWindows, drawn_windows
from genlab.errors import GenlabError
from genlab.text.chars import CharEncoder, char_tokenizer, characters_of
from genlab.text.tokenizer import GPT2_BPE, is_char_level, load_tokenizer
from genlab.utils.atomic import replace_atomically

log = logging.getLogger(__name__)

SAMPLINGS = ("blocks", "random_windows")
# The validation windows of random_windows sampling are drawn once, from this seed: the same
# for every run on the same text, so their losses compare across runs and seeds.
VALIDATION_SEED = 0


class TextDataModule(SplitDataModule):
    """Local `.txt` files (a path or a glob) or, online, a Hugging Face `datasets` name.

    `tokenizer`: `gpt2` (GPT-2's BPE, offline), `char` (the text's characters plus an
    end-of-text token, nanoGPT's shakespeare_char), or a pretrained model's name or directory.
    The files are read in sorted order, joined by the end-of-text token, and tokenized once into
    a token file in `cache_dir`, keyed by the text's and the tokenizer's hashes; batches read
    it through a memory map. The token stream is cut in order: the first tokens train, the next
    `val_fraction` validate and the last `test_fraction` test, so the splits never share text
    (`test_fraction=0`: test scores the whole validation text).

    Batches are (inputs, targets) of windows of `block_size` + 1 tokens, targets one token
    ahead. `sampling=blocks`: windows one after the other (each split's every token once),
    shuffled for training. `sampling=random_windows`: each training batch takes `batch_size`
    windows at random starts (nanoGPT's get_batch; an epoch is as many batches as blocks would
    be), and validation windows are drawn at random once. Test is blocks either way. With
    `url` set, a missing `path` is downloaded there once.
    """

    data_kind = "token blocks"

    def __init__(
        self,
        path: str | None = None,
        dataset: str | None = None,
        dataset_config: str | None = None,
        url: str | None = None,
        tokenizer: str | None = GPT2_BPE,
        sampling: str = "blocks",
        block_size: int = 128,
        batch_size: int = 32,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        cache_dir: str = ".cache/genlab",
    ):
        super().__init__()
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling={sampling!r}: use one of {SAMPLINGS}")
        self.path, self.dataset, self.dataset_config, self.url = path, dataset, dataset_config, url
        self.tokenizer_name = tokenizer
        self.sampling = sampling
        self.block_size = block_size
        self.batch_size = batch_size
        self.fractions = (val_fraction, test_fraction)
        self.cache_dir = Path(cache_dir)
        self.splits: dict[str, TokenWindows] = {}
        self._source: TextFiles | HubText | None = None
        self._tokenizer = None

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
    def source(self) -> TextFiles | HubText:
        if self._source is None:
            self._source = (
                HubText(self.dataset, self.dataset_config)
                if self.dataset
                else TextFiles(self.path, self.url)
            )
        return self._source

    @property
    def token_folder(self) -> Path:
        return self.cache_dir / "text_tokens"

    def text_tokenizer(self):
        """The tokenizer of this text: a character vocabulary is read from the text (once,
        then cached beside its tokens), any other is loaded by name."""
        if self._tokenizer is None:
            if is_char_level(self.tokenizer_name):
                self._tokenizer = char_tokenizer(self._characters())
            else:
                self._tokenizer = load_tokenizer(self.tokenizer_name)
        return self._tokenizer

    def _characters(self) -> list[str]:
        self.prepare_data()
        return cached_characters(self.source, self.token_folder)

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

    def token_ids(self) -> TokenFile:
        """The whole corpus as token ids, in the token file: tokenized into the cache when
        this text and tokenizer were not seen."""
        tokenizer = self.text_tokenizer()
        if is_char_level(self.tokenizer_name):  # a lookup table: numpy speed, one process
            encode = CharEncoder(characters_of(tokenizer), token_dtype(len(tokenizer)))
            return token_file(self.source, tokenizer, self.token_folder, encode)
        # GPT-2's BPE tokenizes about 1 MB/s: chunks go to several processes.
        processes = min(_cores(), 8)
        return token_file(self.source, tokenizer, self.token_folder, processes=processes)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        tokens = self.token_ids()
        bounds = self._split_bounds(len(tokens))
        train, val, test = (tokens[start:end] for start, end in bounds)
        block = self.block_size
        if self.sampling == "random_windows":
            self.splits["train"] = TokenWindows(train, block, stride=1)
            count = max(1, len(val) // (block * self.batch_size)) * self.batch_size
            self.splits["val"] = drawn_windows(val, block, count, VALIDATION_SEED)
        else:
            self.splits["train"] = TokenWindows(train, block, stride=block)
            self.splits["val"] = TokenWindows(val, block, stride=block)
        if len(test) == 0:
            log.info("data.test_fraction=0: test scores the whole validation text")
            test = val
        self.splits["test"] = TokenWindows(test, block, stride=block)

    def _split_bounds(self, n: int) -> list[tuple[int, int]]:
        """Token ranges of train, val and test, in order (nanoGPT's int(n * 0.9) for train at
        a 10% val_fraction); each evaluation split at least one window long."""
        val_fraction, test_fraction = self.fractions
        window = self.block_size + 1
        n_test = n - int(n * (1 - test_fraction)) if test_fraction > 0 else 0
        n_val = int(n * (1 - test_fraction)) - int(n * (1 - val_fraction - test_fraction))
        n_val = max(n_val, window)
        n_test = max(n_test, window) if test_fraction > 0 else 0
        n_train = n - n_val - n_test
        if n_train < window:
            raise GenlabError(
                f"the text has {n} tokens: too short for train/val/test windows of "
                f"data.block_size={self.block_size}; give more text or a smaller block_size"
            )
        return [(0, n_train), (n_train, n_train + n_val), (n_train + n_val, n)]

    def example(self, split: str = "test", index: int = 0, max_tokens: int = 32) -> dict[str, str]:
        """The first `max_tokens` tokens of a split's window `index`, as text (attention maps)."""
        self.setup()
        inputs, _ = self.splits[split][index]
        return {"text": self.text_tokenizer().decode(inputs[:max_tokens].tolist())}

    def train_dataloader(self) -> DataLoader:
        if self.sampling != "random_windows":
            return super().train_dataloader()
        windows = self.splits["train"]
        # An epoch: as many batches as blocks would make (Lightning's loops count epochs).
        batches = max(1, len(windows.tokens) // (self.block_size * self.batch_size))
        sampler = RandomWindows(len(windows), self.batch_size, batches)
        return DataLoader(
            windows, batch_size=self.batch_size, sampler=sampler, collate_fn=keep_batch
        )

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.splits[split], batch_size=self.batch_size, shuffle=shuffle, collate_fn=keep_batch
        )


def _cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
