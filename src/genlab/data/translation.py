"""Sentence pairs for translation: a tab-separated file, or a task generated on the spot."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from genlab.data.in_memory import Split, TensorBatches
from genlab.data.number_words import number_pairs
from genlab.data.splits import SplitDataModule
from genlab.errors import GenlabError
from genlab.text.tokenizer import pretrained_tokenizer
from genlab.text.vocabulary import Vocabulary, padded

log = logging.getLogger(__name__)
TASKS = ("numbers",)
Pair = tuple[str, str]


def read_pairs(path: Path) -> list[Pair]:
    """`source<TAB>target` per line (blank lines skipped; a UTF-8 byte-order mark at the start
    ignored); errors name the file and line."""
    if path.is_dir():
        raise GenlabError(f"data.path={path} is a folder: give a tab-separated file of pairs")
    try:
        text = path.read_text(encoding="utf-8-sig")  # without the byte-order mark, if any
    except FileNotFoundError:
        raise GenlabError(f"data.path={path}: no such file") from None
    except UnicodeDecodeError as err:
        raise GenlabError(f"{path} is not UTF-8 text (byte {err.start}); convert it") from None
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise GenlabError(
                f"{path}:{number}: expected 'source<TAB>target', got {line[:60]!r} "
                f"({len(fields) - 1} tabs); fix or delete that line"
            )
        pairs.append((fields[0].strip(), fields[1].strip()))
    if not pairs:
        raise GenlabError(f"{path} has no sentence pairs: give lines of 'source<TAB>target'")
    return pairs


class TranslationDataModule(SplitDataModule):
    """Pairs from `path` (tab-separated) or from `task` (`numbers`: number words -> digits).

    The pairs are shuffled with `split_seed` and cut into train/val/test, so test sentences are
    unseen in training. With `tokenizer` (a pretrained model's name) both sides use that
    model's tokenizer; otherwise a `Vocabulary` is built from the training pairs, at
    `source_level` / `target_level` ("word" or "char"). Pairs longer than `max_length` tokens
    are skipped, with a count in the log. Batches are (source ids, target ids), padded with the
    pad id and trimmed to their longest sentence; targets end with the end-of-sequence token.
    """

    data_kind = "sentence pairs"

    def __init__(
        self,
        path: str | None = None,
        task: str | None = None,
        num_examples: int = 20000,
        max_number: int = 999_999,
        tokenizer: str | None = None,
        source_level: str = "word",
        target_level: str = "word",
        max_length: int = 128,
        batch_size: int = 64,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        split_seed: int = 42,
    ):
        super().__init__()
        self.path, self.task = path, task
        self.num_examples, self.max_number = num_examples, max_number
        self.tokenizer_name = tokenizer
        self.levels = (source_level, target_level)
        self.max_length = max_length
        self.batch_size = batch_size
        self.fractions = (val_fraction, test_fraction)
        self.split_seed = split_seed
        self.source_vocab: Vocabulary | None = None
        self.target_vocab: Vocabulary | None = None
        self.pairs: dict[str, list[Pair]] = {}
        self.splits: dict[str, TensorBatches] = {}

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        data = config.get("data") or {}
        problems = super().config_problems(config)
        path, task = data.get("path"), data.get("task")
        if bool(path) == bool(task):
            problems.append(
                "data=translation needs exactly one of data.path=<file.tsv> or "
                f"data.task=<{'|'.join(TASKS)}>"
            )
        elif task and task not in TASKS:
            problems.append(f"data.task={task}: unknown; choose one of {', '.join(TASKS)}")
        return problems

    def load_pairs(self) -> list[Pair]:
        if self.task == "numbers":
            try:
                return number_pairs(self.num_examples, self.max_number, self.split_seed)
            except ValueError as err:
                raise GenlabError(f"data.num_examples / data.max_number: {err}") from None
        return read_pairs(Path(self.path))

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        pairs = self.load_pairs()
        random.Random(self.split_seed).shuffle(pairs)
        n_val, n_test = (max(1, int(len(pairs) * f)) for f in self.fractions)
        n_train = len(pairs) - n_val - n_test
        if n_train < 1:
            raise GenlabError(f"{len(pairs)} sentence pairs are too few for train/val/test splits")
        self.pairs = {
            "train": pairs[:n_train],
            "val": pairs[n_train : n_train + n_val],
            "test": pairs[n_train + n_val :],
        }
        if not self.tokenizer_name:
            sources, targets = zip(*self.pairs["train"], strict=True)
            self.source_vocab = Vocabulary.build(sources, self.levels[0])
            self.target_vocab = Vocabulary.build(targets, self.levels[1])
        self.splits = {name: self._tensors(name, split) for name, split in self.pairs.items()}

    def encode(self, sources: list[str], targets: list[str]) -> tuple[list, list]:
        """Token ids of each side; targets end with the end-of-sequence token."""
        if self.tokenizer_name:
            encoded = pretrained_tokenizer(self.tokenizer_name)(sources, text_target=targets)
            return encoded["input_ids"], encoded["labels"]
        return (
            [self.source_vocab.encode(s) for s in sources],
            [self.target_vocab.encode(t) for t in targets],
        )

    @property
    def pad_id(self) -> int:
        if self.tokenizer_name:
            return pretrained_tokenizer(self.tokenizer_name).pad_token_id
        return Vocabulary.pad_id

    def _tensors(self, name: str, pairs: list[Pair]) -> TensorBatches:
        sources, targets = self.encode(*map(list, zip(*pairs, strict=True)))
        keep = [
            i for i in range(len(pairs)) if max(len(sources[i]), len(targets[i])) <= self.max_length
        ]
        if len(keep) < len(pairs):
            log.warning(
                "%s: skipped %d of %d pairs longer than data.max_length=%d tokens",
                name,
                len(pairs) - len(keep),
                len(pairs),
                self.max_length,
            )
            self.pairs[name] = [pairs[i] for i in keep]
        if not keep:
            raise GenlabError(f"no {name} pair fits data.max_length={self.max_length}: raise it")
        return TensorBatches(
            padded([sources[i] for i in keep], self.pad_id),
            padded([targets[i] for i in keep], self.pad_id),
        )

    def example(self, split: str = "test", index: int = 0) -> dict[str, str]:
        """One pair of a split as `text` (source) and `target`, for attention maps."""
        self.setup()
        source, target = self.pairs[split][index]
        return {"text": source, "target": target}

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.splits[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=_TrimPadding(self.pad_id),
        )


class _TrimPadding:
    """collate_fn: drop the columns that are padding in every sentence of the batch."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: Split) -> Split:
        return tuple(self._trim(ids) for ids in batch)

    def _trim(self, ids: torch.Tensor) -> torch.Tensor:
        used = (ids != self.pad_id).any(0).nonzero()
        return ids[:, : int(used.max()) + 1] if len(used) else ids
